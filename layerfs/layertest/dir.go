package layertest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
)

// WriteDir writes l into dir in overlayfs's on-disk format: whiteouts as
// 0/0 character devices, opaque directories with trusted.overlay.opaque.
func WriteDir(t testing.TB, dir string, l Layer) {
	t.Helper()
	mtime := time.Unix(1700000000, 0)
	if err := os.Chmod(dir, 0755); err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, f := range l {
		p := filepath.Join(dir, f.Path)
		if f.Type != cas.TypeOpaque && f.Type != cas.TypeDir {
			if err := os.MkdirAll(filepath.Dir(p), 0755); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		switch f.Type {
		case cas.TypeDir:
			if err = os.MkdirAll(p, 0755); err == nil {
				dirs = append(dirs, p)
			}
		case cas.TypeRegular:
			err = os.WriteFile(p, f.Data, 0600)
		case cas.TypeSymlink:
			err = os.Symlink(f.Linkname, p)
		case cas.TypeHardlink:
			err = os.Link(filepath.Join(dir, f.Linkname), p)
		case cas.TypeFifo:
			err = unix.Mkfifo(p, 0600)
		case cas.TypeChar:
			err = unix.Mknod(p, unix.S_IFCHR|0600, int(unix.Mkdev(f.Dev[0], f.Dev[1])))
		case cas.TypeBlock:
			err = unix.Mknod(p, unix.S_IFBLK|0600, int(unix.Mkdev(f.Dev[0], f.Dev[1])))
		case cas.TypeWhiteout:
			err = unix.Mknod(p, unix.S_IFCHR, 0)
		case cas.TypeOpaque:
			if err = os.MkdirAll(p, 0755); err == nil {
				err = unix.Lsetxattr(p, "trusted.overlay.opaque", []byte("y"), 0)
			}
		}
		if err != nil {
			t.Fatalf("write layer %s: %v", f.Path, err)
		}
		if f.Type == cas.TypeWhiteout || f.Type == cas.TypeOpaque || f.Type == cas.TypeHardlink {
			continue
		}
		if err := unix.Lchown(p, int(f.UID), int(f.GID)); err != nil {
			t.Fatal(err)
		}
		if f.Type != cas.TypeSymlink {
			if err := unix.Chmod(p, f.Mode); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range f.Xattrs {
			if err := unix.Lsetxattr(p, k, v, 0); err != nil {
				t.Fatal(err)
			}
		}
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i], ts, 0)
	}
}
