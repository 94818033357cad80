package launcher

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestPrefetchPaths(t *testing.T) {
	mounts := []specs.Mount{{Destination: "/proc"}, {Destination: "/etc/hosts"}}
	for _, c := range []struct {
		name string
		proc specs.Process
		want []string
	}{
		{"bare name along PATH", specs.Process{Cwd: "/work", Args: []string{"true"}, Env: []string{"PATH=/usr/bin:bin::/sbin"}},
			[]string{"/proc", "/etc/hosts", "/work", "/usr/bin/true", "/work/bin/true", "/work/true", "/sbin/true"}},
		{"the last PATH wins", specs.Process{Cwd: "/", Args: []string{"sh"}, Env: []string{"PATH=/a", "HOME=/root", "PATH=/b"}},
			[]string{"/proc", "/etc/hosts", "/", "/b/sh"}},
		{"relative path", specs.Process{Cwd: "/app", Args: []string{"./run.sh"}},
			[]string{"/proc", "/etc/hosts", "/app", "/app/run.sh"}},
		{"absolute path", specs.Process{Cwd: "/app", Args: []string{"/bin/sh", "-c", "x"}},
			[]string{"/proc", "/etc/hosts", "/app", "/bin/sh"}},
		{"no command", specs.Process{Cwd: "/"}, []string{"/proc", "/etc/hosts", "/"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := prefetchPaths(&specs.Spec{Mounts: mounts, Process: &c.proc})
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
