package layerfs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
)

var tmpSeq atomic.Uint64

// tmpName is a fresh name in the work dir (overlayfs's "work" subdir, on
// the same file system as the upper dir, so a rename moves it into place).
func (l *layerFS) tmpName() string {
	return filepath.Join(l.work, "work", "#fb"+strconv.FormatUint(tmpSeq.Add(1), 16))
}

// copyUp makes the node exist in the upper dir, with its parents. Without
// data, a regular file becomes a metacopy file: the upper file holds the
// metadata, is as large as the lower one but sparse, and carries
// trusted.overlay.metacopy, so its data stays in the lower layer.
//
// The caller holds l.mu for writing. Copying a regular file's data can
// take long, so copyUp lets go of l.mu meanwhile (the node's copying
// channel keeps a second copy-up of it waiting); the caller must not rely
// on what it computed before the call.
func (n *node) copyUp(ctx context.Context, withData bool) syscall.Errno {
	l := n.fsys
	for {
		s := n.state()
		if s.upper && (!s.metacopy || !withData) {
			return 0
		}
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
	if s.upper { // metacopy: fetch the data now
		f, err := os.OpenFile(n.upperPath(), os.O_WRONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return fs.ToErrno(err)
		}
		done := n.startCopy()
		l.mu.Unlock()
		err = l.copyContent(ctx, s.lower, f)
		if err == nil {
			err = unix.Fremovexattr(int(f.Fd()), xattrMetacopy)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		l.mu.Lock()
		defer n.endCopy(done)
		if err != nil {
			l.logf("layerfs: copy up data of %s: %v", n.relPath(), err)
			return fs.ToErrno(err)
		}
		n.setState(nodeState{upper: true, uino: s.uino})
		return 0
	}
	name, parent := n.Parent()
	if parent == nil {
		if n.IsRoot() {
			return syscall.EIO // the root is always in the upper dir
		}
		return syscall.ENOENT // removed meanwhile
	}
	pn := parent.Operations().(*node)
	if errno := pn.copyUp(ctx, false); errno != 0 {
		return errno
	}
	if s.lower == nil {
		return syscall.EIO
	}
	meta := s.lower.e.Type == cas.TypeRegular && !withData
	var dst string
	if s.lower.e.Type == cas.TypeRegular && withData {
		done := n.startCopy()
		defer n.endCopy(done)
		l.mu.Unlock()
		tmp, errno := l.buildObject(ctx, s.lower, true)
		l.mu.Lock()
		if errno != 0 {
			return errno
		}
		// Where the node is now; it may have been deleted meanwhile.
		name, parent = n.Parent()
		var st unix.Stat_t
		if parent != nil {
			dst = filepath.Join(parent.Operations().(*node).upperPath(), name)
		}
		if parent == nil || unix.Lstat(dst, &st) == nil {
			os.Remove(tmp)
			return syscall.ENOENT
		}
		if err := unix.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return fs.ToErrno(err)
		}
	} else {
		dst = filepath.Join(pn.upperPath(), name)
		if errno := l.copyObject(ctx, s.lower, dst, !meta); errno != 0 {
			return errno
		}
	}
	ns := nodeState{upper: true, uino: inoOf(dst)}
	switch {
	case s.lower.isDir():
		ns.lower = s.lower
	case meta:
		ns.lower, ns.metacopy = s.lower, true
	}
	n.setState(ns)
	if len(s.lower.aliases) > 1 {
		l.linkAliases(s.lower, dst)
	}
	return 0
}

// startCopy marks a data copy-up of n in progress.
func (n *node) startCopy() chan struct{} {
	done := make(chan struct{})
	n.mu.Lock()
	n.copying = done
	n.mu.Unlock()
	return done
}

func (n *node) endCopy(done chan struct{}) {
	n.mu.Lock()
	n.copying = nil
	n.mu.Unlock()
	close(done)
}

// copyObject creates a copy of the lower object m at dst: built under a
// temporary name in the work dir, then renamed into place, so a crash
// never leaves a half-copied file in the upper dir.
func (l *layerFS) copyObject(ctx context.Context, m *mnode, dst string, withData bool) syscall.Errno {
	tmp, errno := l.buildObject(ctx, m, withData)
	if errno != 0 {
		return errno
	}
	if err := unix.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		l.logf("layerfs: copy up %s: %v", dst, err)
		return fs.ToErrno(err)
	}
	return 0
}

// buildObject makes a copy of m under a temporary name in the work dir.
func (l *layerFS) buildObject(ctx context.Context, m *mnode, withData bool) (string, syscall.Errno) {
	e := m.e
	tmp := l.tmpName()
	var err error
	switch e.Type {
	case cas.TypeDir:
		err = unix.Mkdir(tmp, 0700)
	case cas.TypeSymlink:
		err = unix.Symlink(e.Linkname, tmp)
	case cas.TypeChar:
		err = unix.Mknod(tmp, unix.S_IFCHR|0600, int(unix.Mkdev(e.Devmajor, e.Devminor)))
	case cas.TypeBlock:
		err = unix.Mknod(tmp, unix.S_IFBLK|0600, int(unix.Mkdev(e.Devmajor, e.Devminor)))
	case cas.TypeFifo:
		err = unix.Mkfifo(tmp, 0600)
	case cas.TypeRegular:
		var f *os.File
		f, err = os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0600)
		if err == nil {
			if withData {
				err = l.copyContent(ctx, m, f)
			} else {
				err = f.Truncate(e.Size)
				if err == nil {
					err = unix.Fsetxattr(int(f.Fd()), xattrMetacopy, nil, 0)
				}
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	default:
		err = fmt.Errorf("copy up %s: %w: type %s", e.Path, ErrBadLayer, e.Type)
	}
	if err == nil {
		err = setMeta(tmp, e)
	}
	if err == nil && e.Type != cas.TypeDir {
		var ino [8]byte
		binary.BigEndian.PutUint64(ino[:], m.ino)
		err = unix.Lsetxattr(tmp, xattrOrigin, ino[:], 0)
	}
	if err != nil {
		os.RemoveAll(tmp)
		l.logf("layerfs: copy up %s: %v", e.Path, err)
		return "", fs.ToErrno(err)
	}
	return tmp, 0
}

// setMeta gives p the owner, mode, xattrs and times of e.
func setMeta(p string, e *cas.Entry) error {
	if err := unix.Lchown(p, int(e.UID), int(e.GID)); err != nil {
		return err
	}
	if e.Type != cas.TypeSymlink {
		if err := unix.Chmod(p, e.Mode&07777); err != nil {
			return err
		}
	}
	for k, v := range e.Xattrs {
		if err := unix.Lsetxattr(p, k, v, 0); err != nil {
			return fmt.Errorf("copy xattr %s: %w", k, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(e.ModTime.UnixNano()), unix.NsecToTimespec(e.ModTime.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// copyContent copies a lower file's bytes into dst: a reflink (FICLONE)
// where the file systems share extents, else copy_file_range, else a
// plain copy.
func (l *layerFS) copyContent(ctx context.Context, m *mnode, dst *os.File) error {
	c, err := l.t.sources[m.src].Open(ctx, m.e)
	if err != nil {
		return err
	}
	if c.File == nil {
		_, err := dst.Write(c.Data)
		return err
	}
	defer c.File.Close()
	if unix.IoctlFileClone(int(dst.Fd()), int(c.File.Fd())) == nil {
		return nil
	}
	var off int64
	for off < m.e.Size {
		k, err := unix.CopyFileRange(int(c.File.Fd()), nil, int(dst.Fd()), nil, int(min(m.e.Size-off, 1<<30)), 0)
		if err != nil {
			if off == 0 && (errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)) {
				break
			}
			return err
		}
		if k == 0 {
			return nil
		}
		off += int64(k)
	}
	if off >= m.e.Size {
		return nil
	}
	_, err = io.Copy(dst, c.File)
	return err
}

// linkAliases gives the other paths of a hard-linked lower file the same
// upper file, so the link survives copy-up (for kernel overlayfs too).
// Paths whose directory is hidden or renamed keep showing the lower file.
func (l *layerFS) linkAliases(m *mnode, dst string) {
	for _, a := range m.aliases {
		p := filepath.Join(l.upper, a)
		if p == dst {
			continue
		}
		if !l.ensureUpperDirs(path.Dir(a)) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); !errors.Is(err, unix.ENOENT) {
			continue
		}
		if err := unix.Link(dst, p); err != nil {
			l.logf("layerfs: link copied-up %s to %s: %v", dst, p, err)
			continue
		}
		l.journal.record(journalPath(a), ChangeModify)
	}
}

// ensureUpperDirs copies up the directories of a merged-tree path that
// still shows its lower directories, updating nodes the kernel knows.
func (l *layerFS) ensureUpperDirs(rel string) bool {
	var in *fs.Inode
	if r, ok := l.rootNode(); ok {
		in = r
	}
	cur := "."
	for _, c := range strings.Split(rel, "/") {
		if c == "" || c == "." {
			continue
		}
		cur = path.Join(cur, c)
		if in != nil {
			in = in.GetChild(c)
		}
		p := filepath.Join(l.upper, cur)
		var st unix.Stat_t
		err := unix.Lstat(p, &st)
		switch {
		case err == nil:
			if st.Mode&unix.S_IFMT != unix.S_IFDIR || hasXattr(p, xattrOpaque, "y") || xattrPresent(p, xattrRedirect) {
				return false
			}
		case errors.Is(err, unix.ENOENT):
			m := l.t.lookupPath(cur)
			if m == nil || !m.isDir() {
				return false
			}
			if l.copyObject(context.Background(), m, p, false) != 0 {
				return false
			}
		default:
			return false
		}
		if in != nil {
			if cn, ok := in.Operations().(*node); ok {
				cn.mu.Lock()
				if !cn.st.upper {
					cn.st.upper = true
					cn.st.uino = inoOf(p)
				}
				cn.mu.Unlock()
			}
		}
	}
	return true
}

func inoOf(p string) uint64 {
	var st unix.Stat_t
	if unix.Lstat(p, &st) != nil {
		return 0
	}
	return st.Ino
}
