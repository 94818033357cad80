package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestFuseProgramModes mounts with fuse-overlayfs both as it runs by
// default (it daemonizes) and kept in the foreground (-f, as a FUSE server
// that does not daemonize would run): either way the merged view is there
// after Mount and gone after Unmount.
func TestFuseProgramModes(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/usr/bin/fuse-overlayfs"); err != nil {
		t.Skip("needs Debian's fuse-overlayfs")
	}
	foreground := filepath.Join(t.TempDir(), "fuse-overlayfs-fg")
	if err := os.WriteFile(foreground, []byte("#!/bin/sh\nexec /usr/bin/fuse-overlayfs -f \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path string }{
		{"daemonizing", "/usr/bin/fuse-overlayfs"},
		{"foreground", foreground},
	}
	layers := makeLayers(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &FuseProgram{Label: tc.name, Path: tc.path}
			if err := p.Available(context.Background()); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			upper, work, mnt := filepath.Join(dir, "u"), filepath.Join(dir, "w"), filepath.Join(dir, "m")
			for _, d := range []string{upper, work, mnt} {
				os.Mkdir(d, 0o755)
			}
			if err := p.Mount(context.Background(), layers, upper, work, mnt); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(mnt, "a/changed"))
			if string(data) != "v2, longer" {
				t.Errorf("a/changed through the mount: %q, %v", data, err)
			}
			if _, err := os.Stat(filepath.Join(mnt, "a/gone")); !os.IsNotExist(err) {
				t.Errorf("whiteout not honoured: %v", err)
			}
			if err := p.Unmount(context.Background(), mnt); err != nil {
				t.Fatal(err)
			}
			if ok, _ := isMountPoint(mnt); ok {
				t.Error("still mounted after Unmount")
			}
			if len(p.procs) != 0 {
				t.Errorf("foreground server not reaped: %v", p.procs)
			}
		})
	}
}

func TestFuseProgramMissing(t *testing.T) {
	p := &FuseProgram{Label: "fusebox-overlay", Missing: "no fusebox-overlay binary in PATH"}
	if err := p.Available(context.Background()); err == nil || err.Error() != "missing: no fusebox-overlay binary in PATH" {
		t.Fatalf("Available: %v", err)
	}
}
