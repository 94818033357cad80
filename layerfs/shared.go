package layerfs

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
)

// Copy-before-write of upper files the store adopted.
//
// A commit of a stopped container may hand a new file of its upper dir to
// the store by link(2) instead of copying it (cas.IngestOptions.Adopt): the
// upper file and the store's object are then one inode, marked with
// cas.XattrShared. The object must never change, so before the container
// changes the file's bytes (an open for writing or with O_TRUNC, a
// truncate) or gives it another name (a hard link, whose names must share
// one private inode), unshare gives the upper path a private copy: the
// bytes (a reflink where the file system can), owner, mode, times and
// xattrs, with the node's inode number kept through xattrOrigin, renamed
// over the upper path. chmod, chown, utimes and xattr changes need no copy:
// the store keeps an object's metadata in its index and never reads the
// object file's own.
//
// A process that had the file open before the copy keeps reading the old
// inode (the store's): it does not see writes made through later opens,
// as with a copy-up under kernel overlayfs before Linux 4.19.

// unshare gives the node's upper file a private inode if the store shares
// it, and reports whether it did. The caller holds l.mu for writing; like
// copyUp, unshare lets go of it while the bytes are copied (the node's
// copying channel keeps a second unshare of it waiting), so the caller must
// not rely on what it computed before the call.
func (n *node) unshare(ctx context.Context) (bool, syscall.Errno) {
	l := n.fsys
	for {
		n.mu.Lock()
		busy := n.copying
		n.mu.Unlock()
		if busy == nil {
			break
		}
		l.mu.Unlock()
		<-busy
		l.mu.Lock()
	}
	s := n.state()
	if !s.upper || s.metacopy {
		return false, 0
	}
	p := n.upperPath()
	if _, err := unix.Lgetxattr(p, cas.XattrShared, nil); err != nil {
		return false, 0 // the common case: one getxattr, nothing shared
	}
	src, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false, fs.ToErrno(err)
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return false, fs.ToErrno(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, 0
	}
	if st.Nlink <= 1 {
		// The object went (its image was removed): the file is the
		// container's alone again.
		unix.Fremovexattr(int(src.Fd()), cas.XattrShared)
		return false, 0
	}
	tmp := l.tmpName()
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false, fs.ToErrno(err)
	}
	done := n.startCopy()
	l.mu.Unlock()
	err = copyBytes(dst, src, st.Size)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	l.mu.Lock()
	defer n.endCopy(done)
	if err == nil {
		// Where the node is now (renamed meanwhile?), with the metadata
		// it has now (changed meanwhile?).
		if _, parent := n.Parent(); parent == nil {
			err = os.ErrNotExist
		} else {
			p = n.upperPath()
			err = copyMeta(p, tmp, int(src.Fd()), n.StableAttr().Ino)
		}
	}
	if err == nil {
		err = unix.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		l.logf("layerfs: copy %s before writing it (the store shares it): %v", n.relPath(), err)
		return false, fs.ToErrno(err)
	}
	s = n.state()
	s.uino = inoOf(p)
	n.mu.Lock()
	n.st = s
	// The kernel may hold the shared inode as the node's passthrough
	// backing file, one per inode: the next open retires the node, so
	// that the kernel looks the name up again and opens the copy.
	n.ptLower = true
	n.mu.Unlock()
	return true, 0
}

// copyMeta gives dst the owner, mode, times and xattrs (but
// cas.XattrShared) of the shared inode open as fd, which must still be
// what p names, and xattrOrigin set to ino unless it has one, so that the
// copy keeps the node's inode number.
func copyMeta(p, dst string, fd int, ino uint64) error {
	var st, now unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := unix.Lstat(p, &now); err != nil {
		return err
	}
	if now.Ino != st.Ino || now.Dev != st.Dev {
		return os.ErrNotExist // replaced meanwhile
	}
	names, err := listXattr(p)
	if err != nil && !errors.Is(err, unix.ENOTSUP) {
		return err
	}
	hasOrigin := false
	for _, name := range names {
		if name == cas.XattrShared {
			continue
		}
		hasOrigin = hasOrigin || name == xattrOrigin
		v, err := getXattr(p, name)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, v, 0); err != nil {
			return err
		}
	}
	if !hasOrigin && ino != 0 {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], ino)
		if err := unix.Lsetxattr(dst, xattrOrigin, b[:], 0); err != nil {
			return err
		}
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(dst, st.Mode&07777); err != nil {
		return err
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// copyBytes copies size bytes of in to out: a reflink where the file
// system shares extents, else copy_file_range, else read and write.
func copyBytes(out, in *os.File, size int64) error {
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) == nil {
		return nil
	}
	var off int64
	for off < size {
		k, err := unix.CopyFileRange(int(in.Fd()), nil, int(out.Fd()), nil, int(min(size-off, 1<<30)), 0)
		if err != nil || k == 0 {
			if _, serr := in.Seek(off, 0); serr != nil {
				return serr
			}
			if _, serr := out.Seek(off, 0); serr != nil {
				return serr
			}
			buf := make([]byte, 1<<20)
			for off < size {
				m, rerr := in.Read(buf[:min(int64(len(buf)), size-off)])
				if m > 0 {
					if _, werr := out.Write(buf[:m]); werr != nil {
						return werr
					}
					off += int64(m)
				}
				if rerr != nil {
					if off < size {
						return rerr
					}
					break
				}
			}
			return nil
		}
		off += int64(k)
	}
	return nil
}
