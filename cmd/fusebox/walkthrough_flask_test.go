package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fusebox/fusebox/testdata"
)

// helloPy is the walkthrough's hello.py.
const helloPy = `from flask import Flask
app = Flask(__name__)

@app.route('/')
def hello_world():
    return 'Hello World!'

if __name__ == '__main__':
    app.run(host='0.0.0.0')
`

// TestWalkthroughFlask is the walkthrough's Flask step end to end: install
// python3 and Flask with apt-get in a --net=host container of the Debian
// minbase image, commit it as simple_flask with hello.py in it, run it with
// -p 5000:5000 and get "Hello World!" from 127.0.0.1:5000 on the host.
func TestWalkthroughFlask(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads and installs Debian packages: minutes")
	}
	needContainers(t)
	img := testdata.Debian(t)
	e := newEnv(t)
	e.ok("load", "-i", img.DockerArchive)
	ref := img.RepoTag()

	out, errOut, code := e.fusebox("run", "--net=host", "--name", "simple_flask", ref, "sh", "-c",
		"apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-flask")
	if code != 0 {
		t.Fatalf("apt-get in a --net=host container: exit %d\n%s\n%s", code, tail(out, 20), tail(errOut, 20))
	}
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello.py")
	if err := os.WriteFile(hello, []byte(helloPy), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("cp", hello, "simple_flask:/hello.py")
	id := strings.TrimSpace(e.ok("commit", "-m", "installed python and flask", "simple_flask"))
	e.ok("tag", id, "simple_flask")
	if out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "simple_flask:latest") {
		t.Fatalf("images after tag:\n%s", out)
	}
	e.ok("rm", "simple_flask")

	port := "5000"
	e.ok("run", "-d", "--name", "flask", "-p", port+":5000", "simple_flask", "python3", "hello.py")
	got := httpGet(t, "http://127.0.0.1:"+port+"/")
	if got != "Hello World!" {
		t.Errorf("GET 127.0.0.1:5000: %q\nlogs:\n%s", got, e.ok("logs", "flask"))
	}
	if out := e.ok("port", "flask"); out != "5000/tcp -> 0.0.0.0:5000\n" {
		t.Errorf("port flask: %q", out)
	}
	e.ok("rm", "-f", "flask")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
