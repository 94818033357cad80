package layerfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
)

type rwMount struct {
	srv         *layerfs.Server
	mnt         string
	upper, work string
	srcs        []layerfs.Source
}

func mountRW(t *testing.T, layers ...layertest.Layer) rwMount {
	t.Helper()
	layertest.Skip(t)
	var srcs []layerfs.Source
	for _, l := range layers {
		srcs = append(srcs, dirSource(t, l))
	}
	m := rwMount{upper: t.TempDir(), work: t.TempDir(), srcs: srcs}
	m.srv, m.mnt = layertest.MountT(t, layerfs.MountOptions{Lowers: srcs, UpperDir: m.upper, WorkDir: m.work})
	return m
}

func (m rwMount) p(s string) string { return filepath.Join(m.mnt, s) }

func changesString(cs []layerfs.Change) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s\n", c.Kind, c.Path)
	}
	return b.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestJournal(t *testing.T) {
	m := mountRW(t, layertest.Layer{
		dirE("etc", 0755), reg("etc/passwd", 0644, "root\n"), reg("etc/hosts", 0644, "localhost\n"),
		dirE("usr", 0755), dirE("usr/bin", 0755), reg("usr/bin/ls", 0755, "ELF"),
		dirE("var", 0755), dirE("var/log", 0755), reg("var/log/old", 0644, "old"),
	})
	must(t, appendFile(m.p("etc/passwd"), "user\n"))
	must(t, os.Mkdir(m.p("tmp"), 01777))
	must(t, os.WriteFile(m.p("tmp/new"), []byte("n"), 0644))
	must(t, os.Remove(m.p("etc/hosts")))
	must(t, os.RemoveAll(m.p("var/log")))
	must(t, os.WriteFile(m.p("x"), []byte("x"), 0644))
	must(t, os.Remove(m.p("x")))
	must(t, os.Rename(m.p("usr/bin/ls"), m.p("usr/bin/ls2")))
	must(t, os.MkdirAll(m.p("opt/a/b"), 0755))
	must(t, os.WriteFile(m.p("opt/a/b/f"), nil, 0644))
	must(t, os.Rename(m.p("opt/a"), m.p("opt/z")))
	want := `C /etc
D /etc/hosts
C /etc/passwd
A /opt
A /opt/z
A /tmp
A /tmp/new
C /usr
C /usr/bin
D /usr/bin/ls
A /usr/bin/ls2
C /var
D /var/log
`
	if got := changesString(m.srv.Journal().Changes()); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
	must(t, m.srv.Unmount())
	// the journal survives the serving process
	j, err := layerfs.OpenJournal(filepath.Join(m.work, "fusebox.journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if got := changesString(j.Changes()); got != want {
		t.Errorf("replayed changes:\n%s\nwant:\n%s", got, want)
	}
	if cs, err := layerfs.ReadJournal(filepath.Join(m.work, "fusebox.journal")); err != nil || changesString(cs) != want {
		t.Errorf("ReadJournal: %v\n%s", err, changesString(cs))
	}
	// and a new mount of the same upper dir goes on with it
	j.Close()
	srv, mnt := layertest.MountT(t, layerfs.MountOptions{Lowers: m.srcs, UpperDir: m.upper, WorkDir: m.work})
	must(t, os.Remove(filepath.Join(mnt, "tmp/new")))
	got := changesString(srv.Journal().Changes())
	if strings.Contains(got, "/tmp/new") || !strings.Contains(got, "A /tmp\n") {
		t.Errorf("after remount and rm /tmp/new:\n%s", got)
	}
}

func TestJournalBadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	must(t, os.WriteFile(p, []byte("A /ok\nX nonsense\n"), 0600))
	if _, err := layerfs.OpenJournal(p); !errors.Is(err, layerfs.ErrBadJournal) {
		t.Fatalf("OpenJournal of a corrupt file: %v, want ErrBadJournal", err)
	}
}

func TestMetacopyChmod(t *testing.T) {
	big := bytes.Repeat([]byte("z"), 8<<20)
	m := mountRW(t, layertest.Layer{reg("big", 0644, string(big))})
	start := time.Now()
	must(t, os.Chmod(m.p("big"), 0600))
	t.Logf("chmod of an 8 MiB lower file: %v", time.Since(start))
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(m.upper, "big"), &st))
	if st.Blocks != 0 || st.Size != int64(len(big)) || st.Mode&07777 != 0600 {
		t.Errorf("upper after chmod: blocks %d size %d mode %#o, want a sparse %d-byte 0600 file", st.Blocks, st.Size, st.Mode&07777, len(big))
	}
	if _, err := unix.Lgetxattr(filepath.Join(m.upper, "big"), "trusted.overlay.metacopy", nil); err != nil {
		t.Errorf("upper after chmod: no metacopy xattr: %v", err)
	}
	got, err := os.ReadFile(m.p("big"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read after chmod: %d bytes, %v", len(got), err)
	}
	must(t, appendFile(m.p("big"), "!"))
	got, err = os.ReadFile(m.p("big"))
	if err != nil || !bytes.Equal(got, append(big, '!')) {
		t.Fatalf("read after append: %d bytes, %v", len(got), err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(m.upper, "big"), "trusted.overlay.metacopy", nil); !errors.Is(err, unix.ENODATA) {
		t.Errorf("upper after append still metacopy: %v", err)
	}
}

// TestCopyUpWhileOpen: an inode has one passthrough backing file, and
// the kernel refuses to mix passthrough and cached opens of one inode;
// opens after a copy-up must see the upper file, not the lower one, while
// a read-only open made before it is still open. A small lower file is
// opened in caching mode, a big one through passthrough.
func TestCopyUpWhileOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"small", 0},
		{"passthrough", layerfs.PassthroughMin + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tail := strings.Repeat("t", tc.size)
			m := mountRW(t, layertest.Layer{reg("f", 0644, "lower content"+tail)})
			t.Logf("passthrough: %v", m.srv.Passthrough())
			r1, err := os.Open(m.p("f"))
			must(t, err)
			defer r1.Close()
			buf := make([]byte, 13)
			n, _ := r1.ReadAt(buf, 0)
			if string(buf[:n]) != "lower content" {
				t.Fatalf("first read %q", buf[:n])
			}
			w, err := os.OpenFile(m.p("f"), os.O_WRONLY, 0)
			must(t, err)
			_, err = w.WriteAt([]byte("UPPER"), 0)
			must(t, err)
			must(t, w.Close())
			for i := 0; i < 2; i++ { // a second open joins the first one's mode
				r2, err := os.Open(m.p("f"))
				must(t, err)
				defer r2.Close()
				n, _ = r2.ReadAt(buf, 0)
				if string(buf[:n]) != "UPPER content" {
					t.Errorf("read after copy-up through a new open: %q, want %q", buf[:n], "UPPER content")
				}
			}
			got, _ := os.ReadFile(filepath.Join(m.upper, "f"))
			if string(got) != "UPPER content"+tail {
				t.Errorf("upper file: %q", got[:min(len(got), 20)])
			}
		})
	}
}

func TestNoDataCopyOnTrunc(t *testing.T) {
	m := mountRW(t, layertest.Layer{reg("f", 0644, strings.Repeat("x", 1<<20))})
	must(t, os.WriteFile(m.p("f"), []byte("short"), 0644))
	got, err := os.ReadFile(m.p("f"))
	if err != nil || string(got) != "short" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestSharedMmap(t *testing.T) {
	m := mountRW(t, layertest.Layer{reg("f", 0644, strings.Repeat("a", 8192))})
	f, err := os.OpenFile(m.p("f"), os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	b, err := unix.Mmap(int(f.Fd()), 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	must(t, err)
	copy(b[4096:], "mapped")
	must(t, unix.Msync(b, unix.MS_SYNC))
	must(t, unix.Munmap(b))
	got, _ := os.ReadFile(m.p("f"))
	if string(got[4096:4102]) != "mapped" {
		t.Errorf("after shared mmap write: %q", got[4096:4102])
	}
}

func TestConcurrency(t *testing.T) {
	var lower layertest.Layer
	for i := 0; i < 50; i++ {
		lower = append(lower, reg(fmt.Sprintf("f%d", i), 0644, strings.Repeat(fmt.Sprint(i%10), 1000+i)))
	}
	lower = append(lower, reg("shared", 0644, "base"))
	m := mountRW(t, lower)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 8; g++ {
		wg.Add(3)
		go func() { // readers
			defer wg.Done()
			for i := 0; i < 50; i++ {
				b, err := os.ReadFile(m.p(fmt.Sprintf("f%d", i)))
				if err != nil || len(b) != 1000+i {
					errs <- fmt.Errorf("read f%d: %d bytes, %v", i, len(b), err)
					return
				}
			}
		}()
		go func() { // writers
			defer wg.Done()
			d := m.p(fmt.Sprintf("w%d", g))
			if err := os.Mkdir(d, 0755); err != nil {
				errs <- err
				return
			}
			for i := 0; i < 50; i++ {
				if err := os.WriteFile(filepath.Join(d, fmt.Sprint(i)), []byte("w"), 0644); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() { // racing copy-ups of one lower file
			defer wg.Done()
			if err := appendFile(m.p("shared"), "+"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, _ := os.ReadFile(m.p("shared"))
	if string(b) != "base++++++++" {
		t.Errorf("shared after 8 appends: %q", b)
	}
	for g := 0; g < 8; g++ {
		ents, _ := os.ReadDir(m.p(fmt.Sprintf("w%d", g)))
		if len(ents) != 50 {
			t.Errorf("w%d: %d entries, want 50", g, len(ents))
		}
	}
}

func TestManyMountsOneChain(t *testing.T) {
	layertest.Skip(t)
	src := dirSource(t, layertest.Layer{reg("f", 0644, "same")})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var mnts []string
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, mnt := layertest.MountT(t, layerfs.MountOptions{Lowers: []layerfs.Source{src}, UpperDir: t.TempDir(), WorkDir: t.TempDir()})
			mu.Lock()
			mnts = append(mnts, mnt)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i, mnt := range mnts {
		must(t, os.WriteFile(filepath.Join(mnt, "f"), []byte(fmt.Sprint(i)), 0644))
	}
	for i, mnt := range mnts {
		if b, _ := os.ReadFile(filepath.Join(mnt, "f")); string(b) != fmt.Sprint(i) {
			t.Errorf("mount %d: %q", i, b)
		}
	}
}

func TestBadInput(t *testing.T) {
	layertest.Skip(t)
	ctx := context.Background()
	t.Run("options", func(t *testing.T) {
		src := dirSource(t, layertest.Layer{reg("f", 0644, "f")})
		for _, tc := range []struct {
			name string
			opts layerfs.MountOptions
		}{
			{"no lowers", layerfs.MountOptions{}},
			{"upper without work", layerfs.MountOptions{Lowers: []layerfs.Source{src}, UpperDir: t.TempDir()}},
		} {
			if _, err := layerfs.Mount(ctx, t.TempDir(), tc.opts); !errors.Is(err, layerfs.ErrBadOptions) {
				t.Errorf("%s: %v, want ErrBadOptions", tc.name, err)
			}
		}
	})
	t.Run("missing lower dir", func(t *testing.T) {
		if _, err := layerfs.NewDirSource(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("NewDirSource of a missing dir: %v", err)
		}
	})
	t.Run("busy mount point", func(t *testing.T) {
		src := dirSource(t, layertest.Layer{reg("f", 0644, "f")})
		_, mnt := layertest.MountT(t, layerfs.MountOptions{Lowers: []layerfs.Source{src}})
		if _, err := layerfs.Mount(ctx, mnt, layerfs.MountOptions{Lowers: []layerfs.Source{src}}); !errors.Is(err, layerfs.ErrBusy) {
			t.Errorf("mount on a mount point: %v, want ErrBusy", err)
		}
	})
	t.Run("lower vanishes", func(t *testing.T) {
		d := t.TempDir()
		layertest.WriteDir(t, d, layertest.Layer{reg("f", 0644, "f"), dirE("sub", 0755)})
		src, err := layerfs.NewDirSource(d)
		must(t, err)
		_, mnt := layertest.MountT(t, layerfs.MountOptions{Lowers: []layerfs.Source{src}})
		must(t, os.RemoveAll(d))
		if _, err := os.ReadFile(filepath.Join(mnt, "f")); err == nil {
			t.Error("read of a vanished lower file succeeded")
		}
		if _, err := os.ReadDir(filepath.Join(mnt, "sub")); err != nil {
			t.Errorf("readdir from the kept view: %v", err)
		}
	})
	t.Run("unmount with open files", func(t *testing.T) {
		src := dirSource(t, layertest.Layer{reg("f", 0644, "f")})
		srv, mnt := layertest.MountT(t, layerfs.MountOptions{Lowers: []layerfs.Source{src}, UpperDir: t.TempDir(), WorkDir: t.TempDir()})
		f, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_RDWR, 0)
		must(t, err)
		defer f.Close()
		done := make(chan error, 1)
		go func() { done <- srv.Unmount() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("unmount with an open file: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("unmount with an open file hangs")
		}
		if isMounted(t, mnt) {
			t.Error("still mounted after Unmount")
		}
		// (reads and writes of a passthrough file still reach its backing
		// file; a request to the server fails)
		if _, err := unix.Fgetxattr(int(f.Fd()), "user.x", make([]byte, 8)); !errors.Is(err, unix.ENOTCONN) {
			t.Errorf("getxattr on a file left open over Unmount: %v, want ENOTCONN", err)
		}
	})
}

func isMounted(t *testing.T, dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	return strings.Contains(string(b), " "+dir+" ")
}

var _ = cas.TypeRegular

func TestTmpfile(t *testing.T) {
	m := mountRW(t, layertest.Layer{dirE("d", 0755)})
	fd, err := unix.Open(m.p("d"), unix.O_TMPFILE|unix.O_RDWR, 0640)
	must(t, err)
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte("anon"))
	must(t, err)
	ents, _ := os.ReadDir(m.p("d"))
	if len(ents) != 0 {
		t.Errorf("tmpfile visible before link: %v", ents)
	}
	must(t, unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, m.p("d/named"), unix.AT_SYMLINK_FOLLOW))
	b, err := os.ReadFile(m.p("d/named"))
	if err != nil || string(b) != "anon" {
		t.Errorf("linked tmpfile: %q, %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(m.upper, "d/named")); string(b) != "anon" {
		t.Errorf("upper file: %q", b)
	}
}

// TestHardlinkSurvivesCopyUp: writing through one name of a lower hard
// link shows through the other, and the upper dir holds one linked file.
func TestHardlinkSurvivesCopyUp(t *testing.T) {
	m := mountRW(t, layertest.Layer{
		reg("a", 0644, "old"), dirE("sub", 0755),
		{Path: "sub/b", Type: cas.TypeHardlink, Linkname: "a"},
	})
	must(t, os.WriteFile(m.p("a"), []byte("new"), 0644))
	for _, p := range []string{"a", "sub/b"} {
		if b, _ := os.ReadFile(m.p(p)); string(b) != "new" {
			t.Errorf("%s after write through a: %q", p, b)
		}
	}
	var sa, sb unix.Stat_t
	must(t, unix.Lstat(filepath.Join(m.upper, "a"), &sa))
	must(t, unix.Lstat(filepath.Join(m.upper, "sub/b"), &sb))
	if sa.Ino != sb.Ino || sa.Nlink != 2 {
		t.Errorf("upper a and sub/b: ino %d/%d nlink %d, want one file with 2 links", sa.Ino, sb.Ino, sa.Nlink)
	}
}

// TestLocks: flock and OFD (POSIX) locks conflict between two open files
// of one file, lower or upper; the kernel keeps them for the mount.
func TestLocks(t *testing.T) {
	m := mountRW(t, layertest.Layer{reg("lower", 0644, "l")})
	must(t, os.WriteFile(m.p("upper"), []byte("u"), 0644))
	for _, name := range []string{"lower", "upper"} {
		f1, err := os.OpenFile(m.p(name), os.O_RDWR, 0)
		must(t, err)
		f2, err := os.OpenFile(m.p(name), os.O_RDWR, 0)
		must(t, err)
		must(t, unix.Flock(int(f1.Fd()), unix.LOCK_EX|unix.LOCK_NB))
		if err := unix.Flock(int(f2.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
			t.Errorf("%s: second flock: %v, want EWOULDBLOCK", name, err)
		}
		must(t, unix.Flock(int(f1.Fd()), unix.LOCK_UN))
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		must(t, unix.FcntlFlock(f1.Fd(), unix.F_OFD_SETLK, &lk))
		if err := unix.FcntlFlock(f2.Fd(), unix.F_OFD_SETLK, &lk); !errors.Is(err, unix.EAGAIN) {
			t.Errorf("%s: second OFD lock: %v, want EAGAIN", name, err)
		}
		f1.Close()
		f2.Close()
	}
}

func TestFsyncFallocateStatfs(t *testing.T) {
	m := mountRW(t, layertest.Layer{reg("f", 0644, "data")})
	f, err := os.OpenFile(m.p("f"), os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	must(t, unix.Fallocate(int(f.Fd()), 0, 0, 1<<20))
	must(t, f.Sync())
	fi, err := f.Stat()
	must(t, err)
	if fi.Size() != 1<<20 {
		t.Errorf("size after fallocate: %d", fi.Size())
	}
	var sfs, ufs unix.Statfs_t
	must(t, unix.Statfs(m.mnt, &sfs))
	must(t, unix.Statfs(m.upper, &ufs))
	if sfs.Blocks != ufs.Blocks || sfs.Bsize != ufs.Bsize {
		t.Errorf("statfs of the mount %d×%d, of the upper fs %d×%d", sfs.Blocks, sfs.Bsize, ufs.Blocks, ufs.Bsize)
	}
}

// TestUnmountFromOutside: umount(8) by someone else ends Wait, and
// Unmount afterwards is quiet.
func TestUnmountFromOutside(t *testing.T) {
	m := mountRW(t, layertest.Layer{reg("f", 0644, "f")})
	must(t, os.WriteFile(m.p("g"), nil, 0644))
	must(t, unix.Unmount(m.mnt, 0))
	done := make(chan struct{})
	go func() { m.srv.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Wait does not return after an outside unmount")
	}
	if err := m.srv.Unmount(); err != nil {
		t.Errorf("Unmount after an outside unmount: %v", err)
	}
}

// TestCopyUpRaces: a long data copy-up lets other operations run; one of
// them removing or renaming the file being copied leaves a consistent
// tree.
func TestCopyUpRaces(t *testing.T) {
	big := strings.Repeat("b", 32<<20)
	for _, other := range []string{"remove", "rename"} {
		t.Run(other, func(t *testing.T) {
			m := mountRW(t, layertest.Layer{reg("big", 0644, big), reg("small", 0644, "s")})
			var wg sync.WaitGroup
			var appendErr, otherErr error
			wg.Add(2)
			go func() { defer wg.Done(); appendErr = appendFile(m.p("big"), "!") }()
			go func() {
				defer wg.Done()
				// unrelated work goes on meanwhile
				for i := 0; i < 20; i++ {
					os.Stat(m.p("small"))
				}
				if other == "remove" {
					otherErr = os.Remove(m.p("big"))
				} else {
					otherErr = os.Rename(m.p("big"), m.p("moved"))
				}
			}()
			wg.Wait()
			if otherErr != nil {
				t.Fatalf("%s: %v", other, otherErr)
			}
			if _, err := os.Lstat(m.p("big")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("big after %s: %v, want gone", other, err)
			}
			if other == "rename" {
				b, err := os.ReadFile(m.p("moved"))
				if err != nil || (len(b) != len(big) && len(b) != len(big)+1) {
					t.Errorf("moved: %d bytes, %v", len(b), err)
				}
			}
			if appendErr != nil && !errors.Is(appendErr, os.ErrNotExist) {
				t.Errorf("append: %v", appendErr)
			}
			// what kernel overlayfs would see in the upper dir agrees
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(m.upper, "big"), &st); err != nil || !(st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0) {
				t.Errorf("upper big after %s: want a whiteout (err %v, mode %#o)", other, err, st.Mode)
			}
		})
	}
}

// TestCapabilityXattr checks the shortcut for security.capability, which
// the kernel asks for before the first write to every file: a file just
// created has none, and one set afterwards is seen through the mount and
// lands in the upper dir.
func TestCapabilityXattr(t *testing.T) {
	m := mountRW(t, layertest.Layer{reg("lower", 0755, "ELF")})
	const caps = "security.capability"
	// VFS_CAP_REVISION_2 with the effective bit, CAP_NET_RAW (13) permitted.
	v := []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	for _, name := range []string{"new", "lower"} {
		p := m.p(name)
		if name == "new" {
			must(t, os.WriteFile(p, []byte("x"), 0755))
		}
		buf := make([]byte, 64)
		if _, err := unix.Getxattr(p, caps, buf); !errors.Is(err, unix.ENODATA) {
			t.Fatalf("%s: getxattr %s before setcap: %v, want ENODATA", name, caps, err)
		}
		must(t, unix.Setxattr(p, caps, v, 0))
		k, err := unix.Getxattr(p, caps, buf)
		if err != nil || !bytes.Equal(buf[:k], v) {
			t.Fatalf("%s: getxattr %s through the mount: %x, %v; want %x", name, caps, buf[:max(k, 0)], err, v)
		}
		k, err = unix.Getxattr(filepath.Join(m.upper, name), caps, buf)
		if err != nil || !bytes.Equal(buf[:k], v) {
			t.Fatalf("%s: upper file's %s: %x, %v; want %x", name, caps, buf[:max(k, 0)], err, v)
		}
		must(t, unix.Removexattr(p, caps))
		if _, err := unix.Getxattr(p, caps, buf); !errors.Is(err, unix.ENODATA) {
			t.Fatalf("%s: getxattr %s after removexattr: %v, want ENODATA", name, caps, err)
		}
	}
}

// TestCachedListings checks that the listings the kernel keeps for
// directories showing lower content only (FOPEN_CACHE_DIR) follow every
// change made through the mount: create, unlink, rename in and out, mkdir,
// and a rewind of a directory kept open across a change.
func TestCachedListings(t *testing.T) {
	m := mountRW(t, layertest.Layer{
		dirE("d", 0755), reg("d/a", 0644, "a"), reg("d/b", 0644, "b"),
		dirE("e", 0755), reg("e/x", 0644, "x"),
	})
	names := func(dir string) string {
		t.Helper()
		ents, err := os.ReadDir(m.p(dir))
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, e := range ents {
			s = append(s, e.Name())
		}
		return strings.Join(s, " ")
	}
	step := func(what, dir, want string) {
		t.Helper()
		for i := 0; i < 3; i++ { // the second and later listings may come from the cache
			if got := names(dir); got != want {
				t.Fatalf("%s: listing %d of %s is %q, want %q", what, i, dir, got, want)
			}
		}
	}
	step("start", "d", "a b")
	step("start", "e", "x")
	must(t, os.WriteFile(m.p("d/c"), nil, 0644))
	step("create", "d", "a b c")
	must(t, os.Remove(m.p("d/a")))
	step("unlink", "d", "b c")
	must(t, os.Rename(m.p("d/b"), m.p("e/b")))
	step("rename out", "d", "c")
	step("rename in", "e", "b x")
	must(t, os.Mkdir(m.p("e/sub"), 0755))
	step("mkdir", "e", "b sub x")

	f, err := os.Open(m.p("e"))
	must(t, err)
	defer f.Close()
	first, err := f.Readdirnames(-1)
	must(t, err)
	must(t, os.WriteFile(m.p("e/y"), nil, 0644))
	_, err = f.Seek(0, 0)
	must(t, err)
	again, err := f.Readdirnames(-1)
	must(t, err)
	if len(again) != len(first)+1 {
		t.Errorf("after rewinddir: %v, want %v and y", again, first)
	}
}

// TestFuseConnectionNotInherited: a process started while mounts are up
// holds none of their /dev/fuse connections (go-fuse opens /dev/fuse
// without O_CLOEXEC; the daemon's shims inherited every mount's).
func TestFuseConnectionNotInherited(t *testing.T) {
	mountRW(t, layertest.Layer{reg("f", 0644, "x")})
	mountRW(t, layertest.Layer{reg("g", 0644, "y")})
	out, err := exec.Command("ls", "-l", "/proc/self/fd/").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "/dev/fuse") {
		t.Errorf("a child process holds a FUSE connection:\n%s", out)
	}
}
