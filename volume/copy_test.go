package volume

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/internal/testenv"
)

func TestCopyTreeKeepsMetadata(t *testing.T) {
	testenv.RequireRoot(t, "chown and mknod")
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d/sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "d/f"), []byte("bytes"), 0o644))
	must(os.Chown(filepath.Join(src, "d/f"), 7, 8))
	must(unix.Chmod(filepath.Join(src, "d/f"), 0o4751)) // after chown, which clears it
	must(os.Link(filepath.Join(src, "d/f"), filepath.Join(src, "d/hard")))
	must(os.Symlink("f", filepath.Join(src, "d/link")))
	must(unix.Lchown(filepath.Join(src, "d/link"), 9, 9))
	must(unix.Mkfifo(filepath.Join(src, "d/fifo"), 0o600))
	must(unix.Mknod(filepath.Join(src, "d/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Chmod(filepath.Join(src, "d/sub"), 0o1770))
	xattr := unix.Setxattr(filepath.Join(src, "d/f"), "user.note", []byte("hi"), 0) == nil
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "d/sub"), old, old))
	must(os.Chtimes(filepath.Join(src, "d/f"), old, old))
	must(os.Chmod(src, 0o710))

	dst := t.TempDir()
	must(CopyTree(dst, src))

	st := func(p string) unix.Stat_t {
		t.Helper()
		var s unix.Stat_t
		must(unix.Lstat(filepath.Join(dst, p), &s))
		return s
	}
	if s := st("."); s.Mode&0o7777 != 0o710 {
		t.Errorf("root mode %o", s.Mode&0o7777)
	}
	f := st("d/f")
	if f.Mode&0o7777 != 0o4751 || f.Uid != 7 || f.Gid != 8 || f.Nlink != 2 || f.Mtim.Sec != old.Unix() {
		t.Errorf("file: mode %o owner %d:%d links %d mtime %d", f.Mode&0o7777, f.Uid, f.Gid, f.Nlink, f.Mtim.Sec)
	}
	if h := st("d/hard"); h.Ino != f.Ino {
		t.Error("hard link became a copy")
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "d/f")); string(b) != "bytes" {
		t.Errorf("content %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "d/link")); l != "f" || st("d/link").Uid != 9 {
		t.Errorf("symlink %q owner %d", l, st("d/link").Uid)
	}
	if s := st("d/fifo"); s.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo type %o", s.Mode&unix.S_IFMT)
	}
	if s := st("d/null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("device %o %d", s.Mode, s.Rdev)
	}
	if s := st("d/sub"); s.Mode&0o7777 != 0o1770 || s.Mtim.Sec != old.Unix() {
		t.Errorf("dir mode %o mtime %d", s.Mode&0o7777, s.Mtim.Sec)
	}
	if xattr {
		buf := make([]byte, 16)
		n, err := unix.Getxattr(filepath.Join(dst, "d/f"), "user.note", buf)
		if err != nil || string(buf[:n]) != "hi" {
			t.Errorf("xattr: %q, %v", buf[:n], err)
		}
	}
}

func TestSeedOnlyIntoEmptyVolumes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := s.Create(ctx, "v1", CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a"), []byte("image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := Seed(v, filepath.Join(src, "missing")); ok || err != nil {
		t.Errorf("Seed from a missing path: %v, %v", ok, err)
	}
	if ok, err := Seed(v, filepath.Join(src, "a")); ok || err != nil {
		t.Errorf("Seed from a file: %v, %v", ok, err)
	}
	if ok, err := Seed(v, src); !ok || err != nil {
		t.Fatalf("Seed: %v, %v", ok, err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "a"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := Seed(v, src); ok || err != nil {
		t.Errorf("second Seed: %v, %v", ok, err)
	}
	if b, _ := os.ReadFile(filepath.Join(v.Mountpoint, "a")); string(b) != "mine" {
		t.Errorf("seeding overwrote the volume: %q", b)
	}
}
