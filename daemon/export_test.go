package daemon

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestContainerPath resolves container paths on a real tree with links
// that point out of it: every result stays inside the root, and the last
// component is followed only with a trailing "/" or "/.".
func TestContainerPath(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{"etc", "tmp/sub"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"tmp/up":    "../../../..",  // relative, out of the root
		"tmp/abs":   "/etc",         // absolute: the container's /etc
		"tmp/host":  "/proc/self",   // a host path, resolved inside
		"tmp/chain": "up/tmp/sub",   // through another link
		"tmp/loop":  "loop",         // to itself
		"tmp/file":  "../etc/group", // to a file
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"../../..", "/"},
		{"/etc/group", "/etc/group"},
		{"etc/group", "/etc/group"},
		{"/tmp/up", "/tmp/up"},
		{"/tmp/up/", "/"},
		{"/tmp/up/.", "/"},
		{"/tmp/up/etc/x", "/etc/x"},
		{"/tmp/up/../../../etc", "/etc"},
		{"/tmp/abs/group", "/etc/group"},
		{"/tmp/host/x", "/proc/self/x"},
		{"/tmp/chain/", "/tmp/sub"},
		{"/tmp/file", "/tmp/file"},
		{"/tmp/file/", "/etc/group"},
	} {
		got, err := containerPath(root, tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		rel, _ := filepath.Rel(root, got)
		if "/"+filepath.ToSlash(rel) != tc.want && !(rel == "." && tc.want == "/") {
			t.Errorf("%q resolves to /%s, want %s", tc.in, rel, tc.want)
		}
	}
	if _, err := containerPath(root, "/tmp/loop/"); err == nil {
		t.Error("a symlink loop resolved")
	}
}

// TestMergeCommitConfig: the request's config wins field by field, the
// container's fills the rest, as Docker merges them.
func TestMergeCommitConfig(t *testing.T) {
	ctr := &container.Config{
		User: "u", Env: []string{"A=1", "B=2"}, Cmd: []string{"sh"}, WorkingDir: "/w",
		Labels: map[string]string{"l": "c", "k": "c"},
	}
	for _, tc := range []struct {
		name string
		user *container.Config
		want *container.Config
	}{
		{"none", nil, ctr},
		{"env and labels merge", &container.Config{Env: []string{"B=3", "C=4"}, Labels: map[string]string{"l": "u"}},
			&container.Config{User: "u", Env: []string{"A=1", "B=3", "C=4"}, Cmd: []string{"sh"}, WorkingDir: "/w",
				Labels: map[string]string{"l": "u", "k": "c"}}},
		{"cmd replaces", &container.Config{Cmd: []string{"true"}, User: "x"},
			&container.Config{User: "x", Env: []string{"A=1", "B=2"}, Cmd: []string{"true"}, WorkingDir: "/w",
				Labels: map[string]string{"l": "c", "k": "c"}}},
		{"entrypoint drops cmd", &container.Config{Entrypoint: []string{"/e"}},
			&container.Config{User: "u", Env: []string{"A=1", "B=2"}, Entrypoint: []string{"/e"}, WorkingDir: "/w",
				Labels: map[string]string{"l": "c", "k": "c"}}},
	} {
		if got := mergeCommitConfig(tc.user, ctr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
