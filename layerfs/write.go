package layerfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// writableDir copies the directory up so that a child can be made, removed
// or renamed in it. The caller holds l.mu for writing.
func (n *node) writableDir(ctx context.Context) syscall.Errno {
	if n.fsys.upper == "" {
		return syscall.EROFS
	}
	return n.copyUp(ctx, false)
}

// removeWhiteout deletes a whiteout at p and reports whether there was one.
func removeWhiteout(p string) (bool, syscall.Errno) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, 0
		}
		return false, fs.ToErrno(err)
	}
	if !isWhiteout(&st) {
		return false, syscall.EEXIST
	}
	return true, fs.ToErrno(unix.Unlink(p))
}

// makeWhiteout puts a whiteout at p, replacing a non-directory there
// atomically.
func (l *layerFS) makeWhiteout(p string) syscall.Errno {
	tmp := l.tmpName()
	if err := unix.Mknod(tmp, unix.S_IFCHR, 0); err != nil {
		return fs.ToErrno(err)
	}
	if err := unix.Rename(tmp, p); err != nil {
		unix.Unlink(tmp)
		return fs.ToErrno(err)
	}
	return 0
}

// setOwner gives a new upper object the caller's uid, and its gid unless
// the directory is setgid (then the kernel already gave it the
// directory's).
func setOwner(ctx context.Context, p, dir string) syscall.Errno {
	caller, ok := fuse.FromContext(ctx)
	if !ok || (int(caller.Uid) == euid && int(caller.Gid) == egid) {
		return 0 // made by this process's ids already, setgid applied
	}
	gid := int(caller.Gid)
	var st unix.Stat_t
	if unix.Stat(dir, &st) == nil && st.Mode&unix.S_ISGID != 0 {
		gid = -1
	}
	return fs.ToErrno(unix.Lchown(p, int(caller.Uid), gid))
}

var (
	euid, egid = os.Geteuid(), os.Getegid()
	// processUmask is this process's umask, read once at start: open(2)
	// and mkdir(2) in the upper dir apply it to modes the kernel already
	// masked with the caller's, so a mode it changes is set again.
	processUmask = func() uint32 {
		m := unix.Umask(0)
		unix.Umask(m)
		return uint32(m)
	}()
)

// made finishes a create-like operation: owner, journal, and the Inode.
func (n *node) made(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	l := n.fsys
	ds := n.state()
	ci, errno := l.resolve(ds, n.upperPath(), name)
	if errno != 0 {
		return nil, errno
	}
	out.Attr.FromStat(sysStat(&ci.ust))
	out.SetEntryTimeout(l.upperTimeout)
	out.SetAttrTimeout(l.upperTimeout)
	l.journal.record(journalPath(filepath.Join(n.relPath(), name)), ChangeAdd)
	return n.newChild(ctx, ci), 0
}

// prepareCreate copies the directory up and clears a whiteout at name.
// It reports whether name hides something in the lower layers.
func (n *node) prepareCreate(ctx context.Context, name string) (string, bool, syscall.Errno) {
	if errno := n.writableDir(ctx); errno != 0 {
		return "", false, errno
	}
	p := n.childUpperPath(name)
	// A whiteout hides a lower name; there is none for other names.
	hides := n.state().lowerDir().child(name) != nil
	if hides {
		if _, errno := removeWhiteout(p); errno != 0 {
			return "", false, errno
		}
	}
	return p, hides, 0
}

var _ = (fs.NodeCreater)((*node)(nil))

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	l := n.fsys
	l.mu.Lock()
	defer l.mu.Unlock()
	p, _, errno := n.prepareCreate(ctx, name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	// O_EXCL first, to know whether this call made the file: another
	// create of the same name may have come first.
	made := true
	f, err := openFile(p, int(flags)|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, mode&0777)
	if errors.Is(err, unix.EEXIST) && flags&unix.O_EXCL == 0 {
		made = false
		f, err = openFile(p, int(flags)|unix.O_CREAT|unix.O_NOFOLLOW, mode&0777)
	}
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	if errno := setOwner(ctx, p, filepath.Dir(p)); errno != 0 {
		f.Close()
		return nil, nil, 0, errno
	}
	if mode&processUmask != 0 {
		if err := unix.Fchmod(int(f.Fd()), mode&07777); err != nil {
			f.Close()
			return nil, nil, 0, fs.ToErrno(err)
		}
	}
	// A new file: no metacopy, no origin; its stat is all resolve
	// would find.
	ci := childInfo{name: name, mode: unix.S_IFREG}
	if err := unix.Fstat(int(f.Fd()), &ci.ust); err != nil {
		f.Close()
		return nil, nil, 0, fs.ToErrno(err)
	}
	ci.st = nodeState{upper: true, uino: ci.ust.Ino}
	ci.ino = upperIno(&ci.ust)
	out.Attr.FromStat(sysStat(&ci.ust))
	out.SetEntryTimeout(l.upperTimeout)
	out.SetAttrTimeout(l.upperTimeout)
	l.journal.record(journalPath(filepath.Join(n.relPath(), name)), ChangeAdd)
	in := n.newChild(ctx, ci)
	cn, ok := in.Operations().(*node)
	if !ok {
		f.Close()
		return nil, nil, 0, syscall.EIO
	}
	cn.mu.Lock()
	want := !cn.ptLower
	cn.noCaps = made
	cn.mu.Unlock()
	return in, newHandle(cn, f, true, cn.openMode(want)), 0, 0
}

var _ = (fs.NodeMkdirer)((*node)(nil))

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	l := n.fsys
	l.mu.Lock()
	defer l.mu.Unlock()
	p, hides, errno := n.prepareCreate(ctx, name)
	if errno != 0 {
		return nil, errno
	}
	if err := unix.Mkdir(p, 0700); err != nil {
		return nil, fs.ToErrno(err)
	}
	if hides { // a new directory over a deleted lower one shows none of it
		if err := unix.Lsetxattr(p, xattrOpaque, []byte("y"), 0); err != nil {
			unix.Rmdir(p)
			return nil, fs.ToErrno(err)
		}
	}
	if errno := setOwner(ctx, p, filepath.Dir(p)); errno != 0 {
		return nil, errno
	}
	var pst unix.Stat_t
	m := mode & 07777
	if unix.Stat(filepath.Dir(p), &pst) == nil && pst.Mode&unix.S_ISGID != 0 {
		m |= unix.S_ISGID
	}
	if err := unix.Chmod(p, m); err != nil {
		return nil, fs.ToErrno(err)
	}
	return n.made(ctx, name, out)
}

var _ = (fs.NodeMknoder)((*node)(nil))

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	l := n.fsys
	l.mu.Lock()
	defer l.mu.Unlock()
	if mode&unix.S_IFMT == unix.S_IFCHR && dev == 0 {
		return nil, syscall.EPERM // that is a whiteout in the upper dir
	}
	p, _, errno := n.prepareCreate(ctx, name)
	if errno != 0 {
		return nil, errno
	}
	if err := unix.Mknod(p, mode&unix.S_IFMT|0600, int(dev)); err != nil {
		return nil, fs.ToErrno(err)
	}
	if errno := setOwner(ctx, p, filepath.Dir(p)); errno != 0 {
		return nil, errno
	}
	if err := unix.Chmod(p, mode&07777); err != nil {
		return nil, fs.ToErrno(err)
	}
	return n.made(ctx, name, out)
}

var _ = (fs.NodeSymlinker)((*node)(nil))

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	l := n.fsys
	l.mu.Lock()
	defer l.mu.Unlock()
	p, _, errno := n.prepareCreate(ctx, name)
	if errno != 0 {
		return nil, errno
	}
	if err := unix.Symlink(target, p); err != nil {
		return nil, fs.ToErrno(err)
	}
	if errno := setOwner(ctx, p, filepath.Dir(p)); errno != 0 {
		return nil, errno
	}
	return n.made(ctx, name, out)
}

var _ = (fs.NodeLinker)((*node)(nil))

// Link copies the target up with its data (a metacopy file found by name
// in the lower layers cannot have a second name) and links it in the upper
// dir.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	l := n.fsys
	l.mu.Lock()
	defer l.mu.Unlock()
	tn, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	tn.mu.Lock()
	tmp := tn.tmp
	tn.tmp = nil
	tn.mu.Unlock()
	if tmp == nil {
		if errno := tn.copyUp(ctx, true); errno != 0 {
			return nil, errno
		}
		if _, errno := tn.unshare(ctx); errno != 0 { // names share a private inode
			return nil, errno
		}
	}
	p, _, errno := n.prepareCreate(ctx, name)
	if errno != 0 {
		return nil, errno
	}
	if tmp != nil { // an O_TMPFILE file gets its first name
		err := unix.Linkat(int(tmp.Fd()), "", unix.AT_FDCWD, p, unix.AT_EMPTY_PATH)
		tmp.Close()
		if err != nil {
			return nil, fs.ToErrno(err)
		}
	} else if err := unix.Link(tn.upperPath(), p); err != nil {
		return nil, fs.ToErrno(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, fs.ToErrno(err)
	}
	out.Attr.FromStat(sysStat(&st))
	out.SetEntryTimeout(l.upperTimeout)
	out.SetAttrTimeout(l.upperTimeout)
	l.journal.record(journalPath(filepath.Join(n.relPath(), name)), ChangeAdd)
	return tn.EmbeddedInode(), 0
}

var _ = (fs.NodeUnlinker)((*node)(nil))

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	l := n.fsys
	l.mu.Lock()
	defer l.mu.Unlock()
	return n.remove(ctx, name, false)
}

var _ = (fs.NodeRmdirer)((*node)(nil))

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	l := n.fsys
	l.mu.Lock()
	defer l.mu.Unlock()
	return n.remove(ctx, name, true)
}

// emptyDir reports whether a resolved directory shows no entries, and
// lists the whiteouts its upper dir holds.
func (l *layerFS) emptyDir(ci childInfo, p string) (bool, []string, syscall.Errno) {
	seen := map[string]bool{}
	var whiteouts []string
	if ci.st.upper {
		ents, err := os.ReadDir(p)
		if err != nil {
			return false, nil, fs.ToErrno(err)
		}
		for _, de := range ents {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(p, de.Name()), &st); err != nil {
				return false, nil, fs.ToErrno(err)
			}
			if !isWhiteout(&st) {
				return false, nil, 0
			}
			seen[de.Name()] = true
			whiteouts = append(whiteouts, de.Name())
		}
	}
	if ld := ci.st.lowerDir(); ld != nil {
		for _, name := range ld.names {
			if !seen[name] {
				return false, nil, 0
			}
		}
	}
	return true, whiteouts, 0
}

// remove deletes name: the upper object goes, and a whiteout hides a lower
// one of the same name.
func (n *node) remove(ctx context.Context, name string, dir bool) syscall.Errno {
	l := n.fsys
	if l.upper == "" {
		return syscall.EROFS
	}
	ds := n.state()
	updir := ""
	if ds.upper {
		updir = n.upperPath()
	}
	ci, errno := l.resolve(ds, updir, name)
	if errno != 0 {
		return errno
	}
	isDir := ci.mode == unix.S_IFDIR
	if dir && !isDir {
		return syscall.ENOTDIR
	}
	if !dir && isDir {
		return syscall.EISDIR
	}
	p := n.childUpperPath(name)
	var whiteouts []string
	if dir {
		empty, wos, errno := l.emptyDir(ci, p)
		if errno != 0 {
			return errno
		}
		if !empty {
			return syscall.ENOTEMPTY
		}
		whiteouts = wos
	}
	hides := ds.lowerDir().child(name) != nil
	if errno := n.writableDir(ctx); errno != 0 {
		return errno
	}
	switch {
	case ci.st.upper && dir:
		for _, w := range whiteouts {
			if err := unix.Unlink(filepath.Join(p, w)); err != nil {
				return fs.ToErrno(err)
			}
		}
		if err := unix.Rmdir(p); err != nil {
			return fs.ToErrno(err)
		}
		if hides {
			if errno := l.makeWhiteout(p); errno != 0 {
				return errno
			}
		}
	case ci.st.upper && hides:
		if errno := l.makeWhiteout(p); errno != 0 {
			return errno
		}
	case ci.st.upper:
		if err := unix.Unlink(p); err != nil {
			return fs.ToErrno(err)
		}
	default:
		if errno := l.makeWhiteout(p); errno != 0 {
			return errno
		}
	}
	l.journal.record(journalPath(filepath.Join(n.relPath(), name)), ChangeDelete)
	return 0
}

var _ = (fs.NodeRenamer)((*node)(nil))

// Rename never fails with EXDEV: a lower file is copied up first, a lower
// directory is copied up empty and gets trusted.overlay.redirect naming
// its lower path, as kernel overlayfs does with redirect_dir=on.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	l := n.fsys
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.upper == "" {
		return syscall.EROFS
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags&^uint32(unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE) != 0 {
		return syscall.EINVAL
	}
	if errno := n.writableDir(ctx); errno != 0 {
		return errno
	}
	if errno := np.writableDir(ctx); errno != 0 {
		return errno
	}
	// Copy up first: a data copy-up lets go of l.mu for a while, so
	// everything else is looked at afterwards, once the names still lead
	// to copied-up nodes.
	if _, derr := l.resolve(np.state(), np.upperPath(), newName); derr == 0 && flags&unix.RENAME_NOREPLACE != 0 {
		return syscall.EEXIST
	}
	var src *node
	for try := 0; ; try++ {
		if try == 3 {
			return syscall.EBUSY
		}
		s, errno := n.childNode(ctx, name)
		if errno != 0 {
			return errno
		}
		if errno := s.copyUpForRename(ctx); errno != 0 {
			return errno
		}
		if flags&unix.RENAME_EXCHANGE != 0 {
			d, errno := np.childNode(ctx, newName)
			if errno != 0 {
				return errno
			}
			if errno := d.copyUpForRename(ctx); errno != 0 {
				return errno
			}
			if d2, _ := np.childNode(ctx, newName); d2 != d {
				continue
			}
		}
		if s2, _ := n.childNode(ctx, name); s2 == s && s.state().upper {
			src = s
			break
		}
	}
	sci, serr := l.resolve(n.state(), n.upperPath(), name)
	if serr != 0 {
		return serr
	}
	dci, derr := l.resolve(np.state(), np.upperPath(), newName)
	exists := derr == 0
	if derr != 0 && derr != syscall.ENOENT {
		return derr
	}
	oldPath := n.childUpperPath(name)
	newPath := np.childUpperPath(newName)
	srcHides := n.state().lowerDir().child(name) != nil
	dstHides := np.state().lowerDir().child(newName) != nil

	if flags&unix.RENAME_EXCHANGE != 0 {
		if !exists {
			return syscall.ENOENT
		}
		dst, errno := np.childNode(ctx, newName)
		if errno != 0 {
			return errno
		}
		if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, unix.RENAME_EXCHANGE); err != nil {
			return fs.ToErrno(err)
		}
		if errno := src.markMoved(newPath, dstHides); errno != 0 {
			return errno
		}
		if errno := dst.markMoved(oldPath, srcHides); errno != 0 {
			return errno
		}
		for i, p := range []string{filepath.Join(n.relPath(), name), filepath.Join(np.relPath(), newName)} {
			if (i == 0 && src.IsDir()) || (i == 1 && dst.IsDir()) {
				l.journal.movedDir(journalPath(p))
			}
			l.journal.record(journalPath(p), ChangeDelete)
			l.journal.record(journalPath(p), ChangeAdd)
		}
		return 0
	}

	if exists {
		if flags&unix.RENAME_NOREPLACE != 0 {
			return syscall.EEXIST
		}
		srcDir, dstDir := sci.mode == unix.S_IFDIR, dci.mode == unix.S_IFDIR
		if dstDir && !srcDir {
			return syscall.EISDIR
		}
		if srcDir && !dstDir {
			return syscall.ENOTDIR
		}
		if dstDir {
			empty, wos, errno := l.emptyDir(dci, newPath)
			if errno != 0 {
				return errno
			}
			if !empty {
				return syscall.ENOTEMPTY
			}
			for _, w := range wos {
				if err := unix.Unlink(filepath.Join(newPath, w)); err != nil {
					return fs.ToErrno(err)
				}
			}
		}
	}
	if sci.mode == unix.S_IFDIR {
		// rename(2) cannot put a directory over a whiteout.
		if _, errno := removeWhiteout(newPath); errno != 0 && errno != syscall.EEXIST {
			return errno
		}
	}
	if err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, 0); err != nil {
		return fs.ToErrno(err)
	}
	if errno := src.markMoved(newPath, dstHides); errno != 0 {
		return errno
	}
	if srcHides {
		if errno := l.makeWhiteout(oldPath); errno != 0 {
			return errno
		}
	}
	if sci.mode == unix.S_IFDIR {
		l.journal.movedDir(journalPath(filepath.Join(n.relPath(), name)))
		l.journal.movedDir(journalPath(filepath.Join(np.relPath(), newName)))
	}
	l.journal.record(journalPath(filepath.Join(n.relPath(), name)), ChangeDelete)
	l.journal.record(journalPath(filepath.Join(np.relPath(), newName)), ChangeAdd)
	return 0
}

// childNode returns the node for name, looking it up if the kernel has not.
func (n *node) childNode(ctx context.Context, name string) (*node, syscall.Errno) {
	if ch := n.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok {
			return cn, 0
		}
	}
	ds := n.state()
	ci, errno := n.fsys.resolve(ds, n.upperPath(), name)
	if errno != 0 {
		return nil, errno
	}
	in := n.newChild(ctx, ci)
	n.AddChild(name, in, true)
	return in.Operations().(*node), 0
}

// copyUpForRename copies a file up with its data (a renamed metacopy file
// would lose its lower data) and a directory without its contents.
func (n *node) copyUpForRename(ctx context.Context) syscall.Errno {
	return n.copyUp(ctx, !n.IsDir())
}

// markMoved records in a moved directory where its lower part is: a
// redirect to its lower path, or opaque when it has none but its new name
// hides a lower entry.
func (n *node) markMoved(p string, hides bool) syscall.Errno {
	if !n.IsDir() {
		return 0
	}
	s := n.state()
	if s.lower != nil {
		return fs.ToErrno(unix.Lsetxattr(p, xattrRedirect, []byte("/"+s.lower.path), 0))
	}
	if hides {
		return fs.ToErrno(unix.Lsetxattr(p, xattrOpaque, []byte("y"), 0))
	}
	return 0
}

var _ = (fs.NodeSetattrer)((*node)(nil))

// Setattr copies up metadata only for chmod, chown and utimes; a truncate
// to a non-zero size needs the data, a truncate to zero does not.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	l := n.fsys
	if l.upper == "" {
		return syscall.EROFS
	}
	sz, hasSize := in.GetSize()
	l.mu.Lock()
	errno := n.copyUp(ctx, hasSize && sz > 0)
	if errno == 0 && hasSize {
		_, errno = n.unshare(ctx) // a truncate changes the bytes
	}
	if errno == 0 {
		l.journal.record(journalPath(n.relPath()), ChangeModify)
	}
	l.mu.Unlock()
	if errno != 0 {
		return errno
	}
	p := n.upperPath()
	var fd int = -1
	if h, ok := f.(fileFder); ok && h.isUpper() && h.file() != nil {
		fd = int(h.file().Fd())
	}
	if m, ok := in.GetMode(); ok {
		var err error
		if fd >= 0 {
			err = unix.Fchmod(fd, m&07777)
		} else {
			err = unix.Fchmodat(unix.AT_FDCWD, p, m&07777, 0)
		}
		if err != nil {
			return fs.ToErrno(err)
		}
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		su, sg := -1, -1
		if uok {
			su = int(uid)
		}
		if gok {
			sg = int(gid)
		}
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, su, sg)
		} else {
			err = unix.Lchown(p, su, sg)
		}
		if err != nil {
			return fs.ToErrno(err)
		}
	}
	if hasSize {
		var err error
		if fd >= 0 {
			err = unix.Ftruncate(fd, int64(sz))
		} else {
			err = unix.Truncate(p, int64(sz))
		}
		if err != nil {
			return fs.ToErrno(err)
		}
		if s := n.state(); s.metacopy && sz == 0 {
			if err := unix.Lremovexattr(p, xattrMetacopy); err != nil {
				return fs.ToErrno(err)
			}
			n.setState(nodeState{upper: true, uino: s.uino})
		}
	}
	mtime, mok := in.GetMTime()
	atime, aok := in.GetATime()
	if mok || aok {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if aok {
			ts[0] = unix.NsecToTimespec(atime.UnixNano())
		}
		if mok {
			ts[1] = unix.NsecToTimespec(mtime.UnixNano())
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fs.ToErrno(err)
		}
	}
	return n.Getattr(ctx, f, out)
}

var _ = (fs.NodeSetxattrer)((*node)(nil))

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.changeXattr(ctx, attr, func(p string) error { return unix.Lsetxattr(p, attr, data, int(flags)) })
}

var _ = (fs.NodeRemovexattrer)((*node)(nil))

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.changeXattr(ctx, attr, func(p string) error { return unix.Lremovexattr(p, attr) })
}

func (n *node) changeXattr(ctx context.Context, attr string, do func(p string) error) syscall.Errno {
	l := n.fsys
	if l.upper == "" {
		return syscall.EROFS
	}
	if isOverlayXattr(attr) {
		return syscall.EPERM
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if errno := n.copyUp(ctx, false); errno != 0 {
		return errno
	}
	n.mu.Lock()
	n.noCaps = false
	n.mu.Unlock()
	if err := do(n.upperPath()); err != nil {
		return fs.ToErrno(err)
	}
	l.journal.record(journalPath(n.relPath()), ChangeModify)
	return 0
}

var _ = (fs.NodeFsyncer)((*node)(nil))

func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := f.(fs.FileFsyncer); ok {
		return h.Fsync(ctx, flags)
	}
	return 0
}

var _ = (fs.NodeTmpfiler)((*node)(nil))

// Tmpfile makes an unnamed file in the upper directory (O_TMPFILE). The
// node keeps a descriptor of it, so a later link(2) gives it a name.
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	l := n.fsys
	l.mu.Lock()
	defer l.mu.Unlock()
	if errno := n.writableDir(ctx); errno != 0 {
		return nil, nil, 0, errno
	}
	fd, err := unix.Open(n.upperPath(), int(flags&^(syscall.O_APPEND|syscall.O_CREAT))|unix.O_TMPFILE, mode&07777)
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	f := os.NewFile(uintptr(fd), "tmpfile")
	if caller, ok := fuse.FromContext(ctx); ok {
		unix.Fchown(fd, int(caller.Uid), int(caller.Gid))
	}
	unix.Fchmod(fd, mode&07777)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, nil, 0, fs.ToErrno(err)
	}
	keep, err := unix.Dup(fd)
	if err != nil {
		f.Close()
		return nil, nil, 0, fs.ToErrno(err)
	}
	ch := &node{fsys: l, st: nodeState{upper: true, uino: st.Ino}, tmp: os.NewFile(uintptr(keep), "tmpfile")}
	in := n.NewInode(ctx, ch, fs.StableAttr{Mode: unix.S_IFREG, Ino: upperIno(&st)})
	out.Attr.FromStat(sysStat(&st))
	return in, newHandle(ch, f, true, ch.openMode(true)), 0, 0
}

var _ = (fs.NodeOnForgetter)((*node)(nil))

// OnForget closes the descriptor an unnamed O_TMPFILE file kept.
func (n *node) OnForget() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tmp != nil {
		n.tmp.Close()
		n.tmp = nil
	}
}

var _ = (fs.NodeFlusher)((*node)(nil))

// Flush answers ENOSYS, after which the kernel sends no more FLUSH
// requests on this mount: the kernel keeps the locks, and the upper file
// needs nothing at close, so this saves one or two round trips per close.
func (n *node) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	return syscall.ENOSYS
}
