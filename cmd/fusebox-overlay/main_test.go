package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/layerfs"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		want     config
		warnings string
		err      string
	}{
		{
			name: "fuse-overlayfs style",
			args: []string{"-o", "lowerdir=/a:/b,upperdir=/u,workdir=/w", "/mnt"},
			want: config{lowers: []string{"/a", "/b"}, upper: "/u", work: "/w", mountpoint: "/mnt"},
		},
		{
			name:     "mount.fuse3 style with unknown and unsupported options",
			args:     []string{"none", "/mnt", "-o", "rw,nodev,lowerdir=/a,bogus=1,noatime,squash_to_root"},
			want:     config{lowers: []string{"/a"}, mountpoint: "/mnt", extra: []string{"nodev"}},
			warnings: "unknown argument ignored: bogus=1\nfusebox-overlay: option squash_to_root is not supported, ignored\n",
		},
		{
			name: "foreground, escaped comma",
			args: []string{"-f", "-olowerdir=/a\\,b", "/mnt"},
			want: config{lowers: []string{"/a,b"}, mountpoint: "/mnt", foreground: true},
		},
		{name: "no lowerdir", args: []string{"/mnt"}, err: "no lowerdir"},
		{name: "upper without work", args: []string{"-o", "lowerdir=/a,upperdir=/u", "/mnt"}, err: "together"},
		{name: "no mount point", args: []string{"-o", "lowerdir=/a"}, err: "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warn bytes.Buffer
			got, err := parseArgs(tc.args, &warn)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.lowers, ":") != strings.Join(tc.want.lowers, ":") || got.upper != tc.want.upper ||
				got.work != tc.want.work || got.mountpoint != tc.want.mountpoint || got.foreground != tc.want.foreground ||
				strings.Join(got.extra, ",") != strings.Join(tc.want.extra, ",") {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if warn.String() != tc.warnings {
				t.Errorf("warnings %q, want %q", warn.String(), tc.warnings)
			}
		})
	}
}

// TestDaemonAndMountFuse builds the binary and mounts with it both ways:
// directly (it daemonizes) and through mount -t fuse.fusebox-overlay.
func TestDaemonAndMountFuse(t *testing.T) {
	testenv.RequireRoot(t, "fusebox-overlay mounts")
	if _, err := exec.LookPath("mount.fuse3"); err != nil {
		t.Skip("no mount.fuse3")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "fusebox-overlay"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	lower, upper, work := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(lower, "hello"), []byte("hi"), 0644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"direct", "mount.fuse3"} {
		t.Run(mode, func(t *testing.T) {
			mnt := t.TempDir()
			opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
			var cmd *exec.Cmd
			if mode == "direct" {
				cmd = exec.Command(filepath.Join(bin, "fusebox-overlay"), "-o", opts, mnt)
			} else {
				// mount(8) runs helpers with a fixed PATH, so the test names
				// the program in mount.fuse3's "PROGRAM#SOURCE" form rather
				// than installing it for -t fuse.fusebox-overlay.
				cmd = exec.Command("mount", "-t", "fuse", filepath.Join(bin, "fusebox-overlay")+"#none", mnt, "-o", opts)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			t.Cleanup(func() {
				if err := unix.Unmount(mnt, 0); err != nil {
					unix.Unmount(mnt, unix.MNT_DETACH)
				}
			})
			b, err := os.ReadFile(filepath.Join(mnt, "hello"))
			if err != nil || string(b) != "hi" {
				t.Fatalf("read through the mount: %q, %v", b, err)
			}
			if err := os.WriteFile(filepath.Join(mnt, mode), []byte("w"), 0644); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(upper, mode)); err != nil {
				t.Errorf("write did not reach the upper dir: %v", err)
			}
			mi, _ := os.ReadFile("/proc/self/mountinfo")
			if !strings.Contains(string(mi), " "+mnt+" ") || !strings.Contains(string(mi), "fuse.fusebox-overlay") {
				t.Errorf("mountinfo has no fuse.fusebox-overlay at %s", mnt)
			}
			if err := unix.Unmount(mnt, 0); err != nil {
				t.Fatalf("umount: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		})
	}
}

// TestJournalSurvivesKill kills the serving process (SIGKILL, no unmount,
// no journal sync) after a few changes and checks that the change journal
// in the work dir lists every one of them, and that a new server on the
// same upper and work dirs goes on from there: the journal's promise for
// a daemon that crashes and is restarted.
func TestJournalSurvivesKill(t *testing.T) {
	testenv.RequireFUSE(t, "fusebox-overlay mounts")
	bin := filepath.Join(t.TempDir(), "fusebox-overlay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	lower, upper, work, mnt := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	for _, f := range []string{"old", "keep"} {
		if err := os.WriteFile(filepath.Join(lower, f), []byte(f), 0644); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	serve := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "-f", "-o", opts, mnt)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); unix.Unmount(mnt, unix.MNT_DETACH) })
		var root, st unix.Stat_t
		unix.Stat(filepath.Dir(mnt), &root)
		for i := 0; ; i++ {
			if unix.Stat(mnt, &st) == nil && st.Dev != root.Dev {
				return cmd
			}
			if i == 300 {
				t.Fatal("fusebox-overlay did not mount in 30 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	journal := func() string {
		t.Helper()
		cs, err := layerfs.ReadJournal(filepath.Join(work, "fusebox.journal"))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, c := range cs {
			b.WriteString(c.Kind.String() + " " + c.Path + "\n")
		}
		return b.String()
	}
	kill := func(cmd *exec.Cmd) {
		t.Helper()
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Fatalf("detach the dead mount: %v", err)
		}
	}

	cmd := serve()
	p := func(s string) string { return filepath.Join(mnt, s) }
	for _, err := range []error{
		os.WriteFile(p("new"), []byte("n"), 0644),
		os.MkdirAll(p("d/e"), 0755),
		os.WriteFile(p("d/e/f"), nil, 0644),
		os.Remove(p("old")),
		os.Chmod(p("keep"), 0600),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	kill(cmd)
	want := "A /d\nA /d/e\nA /d/e/f\nC /keep\nA /new\nD /old\n"
	if got := journal(); got != want {
		t.Fatalf("journal after SIGKILL:\n%s\nwant:\n%s", got, want)
	}

	cmd = serve()
	if err := os.Remove(p("new")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("old"), []byte("again"), 0644); err != nil {
		t.Fatal(err)
	}
	kill(cmd)
	want = "A /d\nA /d/e\nA /d/e/f\nC /keep\nC /old\n"
	if got := journal(); got != want {
		t.Fatalf("journal after a restart and a second SIGKILL:\n%s\nwant:\n%s", got, want)
	}
}

func TestServingProcs(t *testing.T) {
	for _, tc := range []struct{ procs, want int }{
		{1, 4},   // go-fuse still runs 3 readers
		{2, 4},   // the bench machine: 3 readers, one P to spare
		{4, 6},   // 5 readers
		{16, 18}, // readers are capped at 17
		{32, 32}, // already more Ps than readers
	} {
		if got := servingProcs(tc.procs); got != tc.want {
			t.Errorf("servingProcs(%d) = %d, want %d", tc.procs, got, tc.want)
		}
	}
}
