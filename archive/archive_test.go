package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolve resolves container paths on a real tree with links
// that point out of it: every result stays inside the root, and the last
// component is followed only with a trailing "/" or "/.".
func TestResolve(t *testing.T) {
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
		got, err := Resolve(root, tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		rel, _ := filepath.Rel(root, got)
		if "/"+filepath.ToSlash(rel) != tc.want && !(rel == "." && tc.want == "/") {
			t.Errorf("%q resolves to /%s, want %s", tc.in, rel, tc.want)
		}
	}
	if _, err := Resolve(root, "/tmp/loop/"); err == nil {
		t.Error("a symlink loop resolved")
	}
}

// TestExtractTarStaysInside unpacks entries that try to leave the root:
// "../" names, an absolute symlink then written through, a hard link to a
// path outside. Each lands inside the root or fails; the file outside is
// never touched.
func TestExtractTarStaysInside(t *testing.T) {
	type entry struct{ name, link, data string }
	for _, tc := range []struct {
		name    string
		entries []entry
		inside  string // the path under root that must hold "a", if any
		fails   bool
	}{
		{"dotdot name", []entry{{name: "../../../../escape", data: "a"}}, "escape", false},
		{"through an absolute link", []entry{{name: "up", link: "BASE"}, {name: "up/outside", data: "a"}}, "", true},
		{"through a relative link", []entry{{name: "rel", link: "../../.."}, {name: "rel/outside", data: "a"}}, "outside", false},
		{"hard link out", []entry{{name: "hard", link: "=../../../outside"}}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			if err := os.MkdirAll(filepath.Join(root, "dest"), 0o755); err != nil {
				t.Fatal(err)
			}
			outside := filepath.Join(base, "outside")
			if err := os.WriteFile(outside, []byte("host"), 0o644); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, e := range tc.entries {
				switch {
				case e.link == "BASE":
					tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeSymlink, Linkname: base})
				case strings.HasPrefix(e.link, "="):
					tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeLink, Linkname: e.link[1:]})
				case e.link != "":
					tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeSymlink, Linkname: e.link})
				default:
					tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.data))})
					tw.Write([]byte(e.data))
				}
			}
			tw.Close()
			err := ExtractTar(context.Background(), &buf, root, filepath.Join(root, "dest"), ExtractOptions{})
			if (err != nil) != tc.fails {
				t.Errorf("extract: %v (want failure: %v)", err, tc.fails)
			}
			if b, _ := os.ReadFile(outside); string(b) != "host" {
				t.Errorf("the file outside the root was written: %q", b)
			}
			if _, err := os.Stat(filepath.Join(base, "escape")); err == nil {
				t.Error("../ escaped the root")
			}
			if tc.inside != "" {
				if b, _ := os.ReadFile(filepath.Join(root, tc.inside)); string(b) != "a" {
					t.Errorf("%s inside the root: %q", tc.inside, b)
				}
			}
		})
	}
}
