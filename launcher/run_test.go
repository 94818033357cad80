package launcher

import (
	"testing"
)

func TestEcho(t *testing.T) {
	needRoot(t)
	r := runContainer(t, container{opts: Options{Args: []string{"sh", "-c", "echo hello; echo oops >&2; exit 3"}}})
	if r.stdout != "hello\n" || r.stderr != "oops\n" || r.exit.ExitCode != 3 {
		t.Fatalf("got stdout %q stderr %q exit %+v", r.stdout, r.stderr, r.exit)
	}
}
