package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/testdata"
)

func skipMount(t *testing.T) {
	t.Helper()
	testenv.RequireFUSE(t, "fusebox mount")
}

// TestMountCommand: mount an image on the host, look at it with ordinary
// tools, change a --rw mount and list the changes, unmount; and the errors.
func TestMountCommand(t *testing.T) {
	skipMount(t)
	e := newEnv(t)
	img := testdata.Busybox(t)
	e.ok("load", "-i", img.DockerArchive)
	want := t.TempDir()
	testdata.BusyboxRootfs(t, want)

	ro := filepath.Join(t.TempDir(), "ro")
	if out := e.ok("mount", "busybox", ro); out != "" {
		t.Errorf("mount printed %q", out)
	}
	t.Cleanup(func() { e.fusebox("umount", ro) })
	if out, err := exec.Command("diff", "-r", "--no-dereference", want, ro).CombinedOutput(); err != nil {
		t.Errorf("diff -r rootfs mount: %v\n%s", err, out)
	}
	if out, err := exec.Command("find", ro, "-name", "new-link.txt").Output(); err != nil || strings.TrimSpace(string(out)) != filepath.Join(ro, testdata.BusyboxOpaque, "new-link.txt") {
		t.Errorf("find: %q, %v", out, err)
	}
	if out, err := exec.Command("du", "-s", ro).Output(); err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), ro) {
		t.Errorf("du: %q, %v", out, err)
	}

	rw := filepath.Join(t.TempDir(), "rw")
	e.ok("mount", "--rw", "busybox", rw)
	if err := os.WriteFile(filepath.Join(rw, "tmp/hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(rw, "srv/keep.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(rw, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantDiff := "A /data\nC /srv\nD /srv/keep.txt\nC /tmp\nA /tmp/hello.txt\n"
	if out := e.ok("mount", "--diff", rw); out != wantDiff {
		t.Errorf("mount --diff:\n%s\nwant\n%s", out, wantDiff)
	}

	list := e.ok("mount")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "MOUNTPOINT") || !strings.Contains(list, ro+" ") || !strings.Contains(list, rw+" ") {
		t.Errorf("mount list:\n%s", list)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 4 || f[1] != "busybox" || f[2] != img.ID.Encoded()[:12] || (f[0] == ro) != (f[3] == "ro") {
			t.Errorf("mount list line %q", l)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"unknown image", []string{"mount", "nosuchimage", t.TempDir()}, "fusebox: Error response from daemon: No such image: nosuchimage:latest\n"},
		{"busy dir", []string{"mount", "busybox", ro}, "fusebox: Error response from daemon: mount point " + ro + " is busy\n"},
		{"not a mount", []string{"umount", want}, "fusebox: Error response from daemon: No such mount: " + want + "\n"},
		{"diff of a read-only mount", []string{"mount", "--diff", ro}, "fusebox: Error response from daemon: " + ro + " is a read-only mount: it has no changes (mount with --rw)\n"},
		{"one argument", []string{"mount", "busybox"}, "fusebox: \"fusebox mount\" requires an image and a directory, or no argument to list mounts\nSee 'fusebox mount --help'\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := e.fusebox(tc.args...)
			if code != 1 || out != "" || errOut != tc.msg {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, tc.msg)
			}
		})
	}

	e.ok("umount", ro, rw)
	for _, dir := range []string{ro, rw} {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
			t.Errorf("%s after umount: %d entries, %v", dir, len(ents), err)
		}
	}
	if out := e.ok("mount"); strings.Count(out, "\n") != 1 {
		t.Errorf("mounts after umount:\n%s", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "mounts")); len(ents) != 0 {
		t.Errorf("umount left the --rw state behind: %v", ents)
	}
}
