package volume

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"var/data", "real"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"abs":      "/var/data",           // absolute: rooted at the rootfs
		"rel":      "var/data",            // relative, inside
		"real/up":  "../var",              // relative with .., inside
		"esc":      "../../../../tmp",     // climbs out
		"absesc":   "/../tmp",             // absolute, climbs out
		"loop":     "loop",                // ELOOP
		"real/abs": "/real/../var/./data", // absolute with dots
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		target, want string
		err          error
	}{
		{"/var/data", "var/data", nil},
		{"/abs/x", "var/data/x", nil},
		{"/rel", "var/data", nil},
		{"/real/up/data/new/deeper", "var/data/new/deeper", nil},
		{"/real/abs", "var/data", nil},
		{"/missing/../var", "var", nil},
		{"/esc", "", ErrTargetEscape},
		{"/esc/x", "", ErrTargetEscape},
		{"/absesc", "", ErrTargetEscape},
		{"/loop/x", "", syscall.ELOOP},
		{"relative", "", ErrInvalidSpec},
	} {
		got, err := Resolve(root, c.target)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Resolve(%q) = %q, %v; want %v", c.target, got, err, c.err)
			}
			continue
		}
		if err != nil || got != filepath.Join(root, c.want) {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.target, got, err, filepath.Join(root, c.want))
		}
	}
}
