package volume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Seed copies what the image holds at src (a directory in the mounted
// rootfs) into the volume's data directory, when that directory is empty
// and src is a directory: Docker's copy of image content into a new
// volume. The data directory takes src's owner and mode. It reports
// whether it copied.
func Seed(v Volume, src string) (bool, error) {
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("seed volume %s: %w", v.Name, err)
	}
	ents, err := os.ReadDir(v.Mountpoint)
	if err != nil {
		return false, fmt.Errorf("seed volume %s: %w", v.Name, err)
	}
	if len(ents) > 0 {
		return false, nil
	}
	if err := CopyTree(v.Mountpoint, src); err != nil {
		return false, fmt.Errorf("seed volume %s: %w", v.Name, err)
	}
	return true, nil
}

// CopyTree copies the tree at src into the existing directory dst, keeping
// each entry's type, mode (setuid, setgid and sticky bits too), owner,
// times, extended attributes and hard links. dst itself takes src's
// owner, mode and times.
func CopyTree(dst, src string) error {
	c := copier{links: map[fileID]string{}}
	if err := c.copyDir(dst, src, true); err != nil {
		return err
	}
	return nil
}

type fileID struct{ dev, ino uint64 }

type copier struct {
	links map[fileID]string // first copy of each multiply-linked file
}

func (c *copier) copyDir(dst, src string, exists bool) error {
	st, err := lstat(src)
	if err != nil {
		return err
	}
	if !exists {
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := c.copyEntry(filepath.Join(dst, e.Name()), filepath.Join(src, e.Name())); err != nil {
			return err
		}
	}
	return finish(dst, src, st)
}

func (c *copier) copyEntry(dst, src string) error {
	st, err := lstat(src)
	if err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return c.copyDir(dst, src, false)
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFREG:
		id := fileID{uint64(st.Dev), st.Ino}
		if st.Nlink > 1 {
			if first, ok := c.links[id]; ok {
				return os.Link(first, dst)
			}
			c.links[id] = dst
		}
		if err := copyFile(dst, src); err != nil {
			return err
		}
	default: // devices, fifos, sockets
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", dst, err)
		}
	}
	return finish(dst, src, st)
}

func copyFile(dst, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

// finish gives dst src's owner, mode, extended attributes and times, in
// that order: chown clears setuid bits, and the times last so that
// nothing after touches them.
func finish(dst, src string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dst, err)
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if !isLink {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", dst, err)
		}
	}
	if err := copyXattrs(dst, src); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", dst, err)
	}
	return nil
}

func lstat(p string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	return &st, nil
}

// copyXattrs copies the extended attributes a filesystem lets us read and
// write; attributes the destination refuses (no support, no permission
// for a namespace) are skipped, as cp -a does.
func copyXattrs(dst, src string) error {
	names, err := listXattrs(src)
	if err != nil {
		return nil // the source has none we can see
	}
	for _, name := range names {
		val, err := getXattr(src, name)
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) {
				continue
			}
			return fmt.Errorf("set xattr %s on %s: %w", name, dst, err)
		}
	}
	return nil
}

func listXattrs(p string) ([]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var out []string
	start := 0
	for i, b := range buf[:sz] {
		if b == 0 {
			if i > start {
				out = append(out, string(buf[start:i]))
			}
			start = i + 1
		}
	}
	return out, nil
}

func getXattr(p, name string) ([]byte, error) {
	for {
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, sz)
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, syscall.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
