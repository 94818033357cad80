package layerfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
)

// upperInoBase keeps inode numbers of files that exist only in the upper
// dir apart from the small, dense numbers of the merged lower view.
const upperInoBase = 1 << 62

func upperIno(st *unix.Stat_t) uint64 { return upperInoBase | st.Ino }

// layerFS is the state shared by the nodes of one mount.
type layerFS struct {
	t       *tree
	upper   string // "" for a read-only mount
	work    string
	journal *Journal
	logger  *log.Logger

	lowerTimeout time.Duration // lower content never changes
	upperTimeout time.Duration

	// mu orders changes of the tree's shape (create, unlink, rename,
	// copy-up) against lookups and readdir, which take it shared. Reads
	// and writes of file data never take it.
	mu sync.RWMutex

	root *node

	// pins are O_PATH descriptors of the upper and work directories,
	// held while mounted so that their dentries and inodes (and those of
	// every directory above them) stay cached: a path walk to the upper
	// dir never waits for the disk, even after the caches are dropped.
	// Kernel overlayfs holds the same references.
	pins []int

	genMu sync.Mutex
	gens  map[uint64]uint64 // inode number -> generation, for retired inodes
}

// gen is the generation of inode number ino: 0 unless an inode with the
// number was retired.
func (l *layerFS) gen(ino uint64) uint64 {
	l.genMu.Lock()
	defer l.genMu.Unlock()
	return l.gens[ino]
}

// retire makes the next lookup of n's name return a new Inode (same
// number, next generation), and forgets n's place in the tree.
func (l *layerFS) retire(n *node) {
	ino := n.StableAttr().Ino
	l.genMu.Lock()
	if l.gens == nil {
		l.gens = map[uint64]uint64{}
	}
	if l.gens[ino] <= n.StableAttr().Gen {
		l.gens[ino] = n.StableAttr().Gen + 1
	}
	l.genMu.Unlock()
	if name, parent := n.Parent(); parent != nil {
		parent.RmChild(name)
	}
}

func (l *layerFS) rootNode() (*fs.Inode, bool) {
	if l.root == nil {
		return nil, false
	}
	return l.root.EmbeddedInode(), true
}

func (l *layerFS) logf(format string, args ...any) {
	if l.logger != nil {
		l.logger.Printf(format, args...)
	}
}

// node is one inode of the mount. Which layer shows it is decided when it
// is looked up and changes only by copy-up, under layerFS.mu.
type node struct {
	fs.Inode
	fsys *layerFS

	mu sync.Mutex
	// st.lower is the merged lower object this node shows: for a
	// directory, the one whose children merge in (nil when the directory
	// is opaque or new); for a file, the one that holds the data while the
	// node is not copied up or only its metadata is. st.upper is true once
	// the node exists in the upper dir; st.metacopy when the upper file
	// holds metadata only.
	st nodeState
	// ptLower is set for good once a lower file was offered to the kernel
	// as a passthrough backing file: the kernel keeps one backing file
	// per inode, so later opens of the copied-up file must not ask for
	// passthrough while it may still be registered.
	ptLower bool
	// cachedOpens and ptOpens count the open files of the node in the
	// kernel's caching mode and in passthrough (see openMode).
	cachedOpens, ptOpens int
	// tmp is the upper file of an O_TMPFILE node until it is linked.
	tmp *os.File
	// copying is closed when a data copy-up of the node in progress ends.
	copying chan struct{}
	// noCaps is set when the upper file is known to have no
	// security.capability xattr: it was made by Create and no xattr was
	// set on it since. The kernel asks for that xattr before the first
	// write to every inode (to drop capabilities on write), so a file
	// just created is answered without a system call.
	noCaps bool
}

type nodeState struct {
	lower    *mnode
	upper    bool
	metacopy bool
	// uino is the upper object's inode number, to notice when the path
	// of a node no longer leads to its object (it was replaced by rename
	// while the kernel still held the node).
	uino uint64
}

func (n *node) state() nodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st
}

func (n *node) setState(s nodeState) {
	n.mu.Lock()
	n.st = s
	n.mu.Unlock()
}

// relPath is the node's path in the merged tree ("" for the root).
func (n *node) relPath() string { return n.Path(nil) }

func (n *node) upperPath() string { return filepath.Join(n.fsys.upper, n.relPath()) }

func (n *node) childUpperPath(name string) string {
	return filepath.Join(n.fsys.upper, n.relPath(), name)
}

// journalPath is the slash-rooted path the journal records.
func journalPath(rel string) string { return "/" + rel }

// lowerDir is the lower directory whose children merge into this one.
func (s nodeState) lowerDir() *mnode {
	if s.lower != nil && s.lower.isDir() {
		return s.lower
	}
	return nil
}

// xattrCaps holds a file's capabilities.
const xattrCaps = "security.capability"

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func hasXattr(p, name string, want string) bool {
	v, err := getXattr(p, name)
	return err == nil && string(v) == want
}

func xattrPresent(p, name string) bool {
	_, err := unix.Lgetxattr(p, name, nil)
	return err == nil
}

// xattrSet says which of the xattrs resolve looks for an upper object may
// have.
type xattrSet uint8

const (
	hasOpaque xattrSet = 1 << iota
	hasRedirect
	hasMetacopy
	hasOrigin

	mayHaveAll = hasOpaque | hasRedirect | hasMetacopy | hasOrigin
)

// upperXattrs lists p's xattrs once, so that resolve asks only for the
// ones present: most upper objects have none, and one llistxattr replaces
// two lgetxattr that fail. When the list cannot be read into the buffer
// (many or long names) or at all, every one may be present and the
// caller probes each, as it would without the list.
func upperXattrs(p string) xattrSet {
	var buf [512]byte
	n, err := unix.Llistxattr(p, buf[:])
	if err != nil {
		return mayHaveAll
	}
	var xs xattrSet
	for b := buf[:n]; len(b) > 0; {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			i = len(b)
		}
		switch string(b[:i]) { // no allocation: compared in place
		case xattrOpaque:
			xs |= hasOpaque
		case xattrRedirect:
			xs |= hasRedirect
		case xattrMetacopy:
			xs |= hasMetacopy
		case xattrOrigin:
			xs |= hasOrigin
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return xs
}

// getXattrIn is getXattr for an xattr that xs says p may have, and
// ENODATA without a system call for one it does not.
func getXattrIn(xs, bit xattrSet, p, name string) ([]byte, error) {
	if xs&bit == 0 {
		return nil, unix.ENODATA
	}
	return getXattr(p, name)
}

// childInfo is what resolve finds for a name in a directory.
type childInfo struct {
	name  string
	st    nodeState
	ust   unix.Stat_t // upper stat when st.upper
	ino   uint64
	mode  uint32 // S_IFMT bits
	upDir string
}

// resolve finds name in the directory with state ds whose upper path is
// updir. It reads the upper dir (one lstat, and xattrs for directories and
// metacopy files) and probes the merged lower view once.
func (l *layerFS) resolve(ds nodeState, updir, name string) (childInfo, syscall.Errno) {
	ci := childInfo{name: name}
	ld := ds.lowerDir()
	lc := ld.child(name)
	if ds.upper && l.upper != "" {
		p := filepath.Join(updir, name)
		err := unix.Lstat(p, &ci.ust)
		if err == nil {
			if isWhiteout(&ci.ust) {
				return ci, syscall.ENOENT
			}
			ci.st.upper = true
			ci.st.uino = ci.ust.Ino
			ci.mode = ci.ust.Mode & unix.S_IFMT
			xs := upperXattrs(p)
			if ci.mode == unix.S_IFDIR {
				switch {
				case xs&hasOpaque != 0 && hasXattr(p, xattrOpaque, "y"):
				default:
					if r, err := getXattrIn(xs, hasRedirect, p, xattrRedirect); err == nil {
						rs := string(r)
						if path.IsAbs(rs) {
							ci.st.lower = l.t.lookupPath(rs)
						} else {
							ci.st.lower = ld.child(rs)
						}
					} else if lc != nil && lc.isDir() {
						ci.st.lower = lc
					}
					if ci.st.lower != nil && !ci.st.lower.isDir() {
						ci.st.lower = nil
					}
				}
				if ci.st.lower != nil {
					ci.ino = ci.st.lower.ino
				} else {
					ci.ino = upperIno(&ci.ust)
				}
				return ci, 0
			}
			if ci.mode == unix.S_IFREG && xs&hasMetacopy != 0 && xattrPresent(p, xattrMetacopy) {
				data := lc
				// kernel overlayfs (metacopy=on) renames a metacopy file
				// with a redirect to where its data is
				if r, err := getXattrIn(xs, hasRedirect, p, xattrRedirect); err == nil {
					if rs := string(r); path.IsAbs(rs) {
						data = l.t.lookupPath(rs)
					} else {
						data = ld.child(rs)
					}
				}
				if data == nil || data.e.Type != cas.TypeRegular {
					l.logf("layerfs: %s: metacopy file without lower data", p)
					return ci, syscall.EIO
				}
				ci.st.metacopy = true
				ci.st.lower = data
				ci.ino = data.ino
				return ci, 0
			}
			ci.ino = upperIno(&ci.ust)
			if v, err := getXattrIn(xs, hasOrigin, p, xattrOrigin); err == nil && len(v) == 8 {
				ci.ino = binary.BigEndian.Uint64(v) // copied up: keeps its number
			}
			return ci, 0
		}
		if !errors.Is(err, unix.ENOENT) {
			return ci, fs.ToErrno(err)
		}
	}
	if lc == nil {
		return ci, syscall.ENOENT
	}
	ci.st.lower = lc
	ci.ino = lc.ino
	ci.mode = entryFmt(lc.e)
	return ci, 0
}

func entryFmt(e *cas.Entry) uint32 {
	switch e.Type {
	case cas.TypeDir:
		return unix.S_IFDIR
	case cas.TypeSymlink:
		return unix.S_IFLNK
	case cas.TypeChar:
		return unix.S_IFCHR
	case cas.TypeBlock:
		return unix.S_IFBLK
	case cas.TypeFifo:
		return unix.S_IFIFO
	default:
		return unix.S_IFREG
	}
}

func entryAttr(m *mnode, out *fuse.Attr) {
	e := m.e
	out.Ino = m.ino
	out.Mode = entryFmt(e) | e.Mode&07777
	out.Uid, out.Gid = e.UID, e.GID
	out.Nlink = m.nlink
	switch e.Type {
	case cas.TypeRegular:
		out.Size = uint64(e.Size)
	case cas.TypeSymlink:
		out.Size = uint64(len(e.Linkname))
	case cas.TypeDir:
		out.Size = 4096
	case cas.TypeChar, cas.TypeBlock:
		out.Rdev = uint32(unix.Mkdev(e.Devmajor, e.Devminor))
	}
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	sec, nsec := uint64(e.ModTime.Unix()), uint32(e.ModTime.Nanosecond())
	if e.ModTime.IsZero() {
		sec, nsec = 0, 0
	}
	out.Mtime, out.Mtimensec = sec, nsec
	out.Atime, out.Atimensec = sec, nsec
	out.Ctime, out.Ctimensec = sec, nsec
}

// attr fills out for a node in state s. A metacopy file shows the upper
// metadata; its size is kept equal to the lower one by copy-up.
func (l *layerFS) attr(s nodeState, upath string, out *fuse.Attr) syscall.Errno {
	if s.upper {
		var st unix.Stat_t
		if err := unix.Lstat(upath, &st); err != nil {
			return fs.ToErrno(err)
		}
		if s.uino != 0 && st.Ino != s.uino {
			return syscall.EIO // the path leads to another object now
		}
		out.FromStat(sysStat(&st))
		return 0
	}
	if s.lower == nil {
		return syscall.ENOENT
	}
	entryAttr(s.lower, out)
	return 0
}

func (l *layerFS) timeout(s nodeState) time.Duration {
	if s.upper {
		return l.upperTimeout
	}
	return l.lowerTimeout
}

// newChild returns the Inode for a resolved child, reusing a live one with
// the same number (a hard link, or a number the upper file system reused),
// whose state is then brought up to date.
func (n *node) newChild(ctx context.Context, ci childInfo) *fs.Inode {
	sa := fs.StableAttr{Mode: ci.mode, Ino: ci.ino, Gen: n.fsys.gen(ci.ino)}
	var in *fs.Inode
	var ch *node
	if prev := n.GetChild(ci.name); prev != nil && prev.StableAttr() == sa {
		in = prev // the usual case for a name the kernel knows: no allocation
	} else {
		ch = &node{fsys: n.fsys, st: ci.st}
		in = n.NewInode(ctx, ch, sa)
	}
	if got, ok := in.Operations().(*node); ok && got != ch {
		got.mu.Lock()
		// An upper finding is the truth; a lower one must not undo a
		// copy-up made through another path of a hard link.
		if ci.st.upper || !got.st.upper {
			got.st = ci.st
		}
		got.mu.Unlock()
	}
	return in
}

var _ = (fs.NodeLookuper)((*node)(nil))

// Lookup costs one lstat in the upper dir (writable mounts with this
// directory copied up) and one map probe in the merged lower view.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	l := n.fsys
	l.mu.RLock()
	defer l.mu.RUnlock()
	ds := n.state()
	updir := ""
	if ds.upper {
		updir = n.upperPath()
	}
	ci, errno := l.resolve(ds, updir, name)
	if errno != 0 {
		// A miss leaves the entry timeout at zero: go-fuse then answers
		// with a negative entry that lasts the mount's NegativeTimeout,
		// which the kernel caches. With a timeout set here it passed
		// ENOENT on as an error, which the kernel does not cache, and
		// every walk through a missing name (a PATH lookup, a stat of an
		// absent file) cost a round trip each time.
		return nil, errno
	}
	if ci.st.upper {
		out.Attr.FromStat(sysStat(&ci.ust))
	} else {
		entryAttr(ci.st.lower, &out.Attr)
	}
	to := l.timeout(ci.st)
	out.SetEntryTimeout(to)
	out.SetAttrTimeout(to)
	return n.newChild(ctx, ci), 0
}

var _ = (fs.NodeGetattrer)((*node)(nil))

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := f.(fileFder); ok {
		if fd := h.file(); fd != nil && h.isUpper() {
			var st unix.Stat_t
			if err := unix.Fstat(int(fd.Fd()), &st); err != nil {
				return fs.ToErrno(err)
			}
			out.FromStat(sysStat(&st))
			// The node's number, not the upper file's: they differ
			// for upper-only and copied-up files (see the package doc).
			out.Ino = n.StableAttr().Ino
			out.SetTimeout(n.fsys.upperTimeout)
			return 0
		}
	}
	s := n.state()
	up := ""
	if s.upper {
		up = n.upperPath()
	}
	if errno := n.fsys.attr(s, up, &out.Attr); errno != 0 {
		return errno
	}
	if out.Mode&unix.S_IFMT != n.StableAttr().Mode&unix.S_IFMT {
		return syscall.EIO // the path leads to another object now
	}
	if n.StableAttr().Ino > 1 {
		out.Ino = n.StableAttr().Ino
	}
	out.SetTimeout(n.fsys.timeout(s))
	return 0
}

var _ = (fs.NodeReaddirer)((*node)(nil))

// Readdir lists the upper directory, if any, and adds the names of the
// merged lower directory that it does not hide; lower names come from the
// precomputed view without touching any layer.
func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	l := n.fsys
	l.mu.RLock()
	defer l.mu.RUnlock()
	ds := n.state()
	ld := ds.lowerDir()
	parentIno := n.StableAttr().Ino
	if _, p := n.Parent(); p != nil {
		parentIno = p.StableAttr().Ino
	}
	list := []fuse.DirEntry{
		{Name: ".", Mode: unix.S_IFDIR, Ino: n.StableAttr().Ino},
		{Name: "..", Mode: unix.S_IFDIR, Ino: parentIno},
	}
	var seen map[string]bool
	if ds.upper && l.upper != "" {
		updir := n.upperPath()
		ents, err := os.ReadDir(updir)
		if err != nil {
			return nil, fs.ToErrno(err)
		}
		seen = make(map[string]bool, len(ents))
		for _, de := range ents {
			name := de.Name()
			seen[name] = true
			if ch := n.GetChild(name); ch != nil {
				sa := ch.StableAttr()
				list = append(list, fuse.DirEntry{Name: name, Mode: sa.Mode, Ino: sa.Ino})
				continue
			}
			ci, errno := l.resolve(ds, updir, name)
			if errno == syscall.ENOENT {
				continue // a whiteout, or gone meanwhile
			}
			if errno != 0 {
				return nil, errno
			}
			list = append(list, fuse.DirEntry{Name: name, Mode: ci.mode, Ino: ci.ino})
		}
	}
	if ld != nil {
		for _, name := range ld.names {
			if seen[name] {
				continue
			}
			c := ld.children[name]
			list = append(list, fuse.DirEntry{Name: name, Mode: entryFmt(c.e), Ino: c.ino})
		}
	}
	return fs.NewListDirStream(list), 0
}

var _ = (fs.NodeReadlinker)((*node)(nil))

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	s := n.state()
	if s.upper {
		buf := make([]byte, 4096)
		k, err := unix.Readlink(n.upperPath(), buf)
		if err != nil {
			return nil, fs.ToErrno(err)
		}
		return buf[:k], 0
	}
	if s.lower == nil || s.lower.e.Type != cas.TypeSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(s.lower.e.Linkname), 0
}

var _ = (fs.NodeGetxattrer)((*node)(nil))

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if isOverlayXattr(attr) {
		return 0, syscall.ENODATA
	}
	if attr == xattrCaps {
		n.mu.Lock()
		none := n.noCaps
		n.mu.Unlock()
		if none {
			return 0, syscall.ENODATA
		}
	}
	s := n.state()
	if s.upper {
		sz, err := unix.Lgetxattr(n.upperPath(), attr, dest)
		return uint32(sz), fs.ToErrno(err)
	}
	if s.lower == nil {
		return 0, syscall.ENODATA
	}
	v, ok := s.lower.e.Xattrs[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

var _ = (fs.NodeListxattrer)((*node)(nil))

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	s := n.state()
	var names []string
	if s.upper {
		all, err := listXattr(n.upperPath())
		if err != nil && !errors.Is(err, unix.ENOTSUP) {
			return 0, fs.ToErrno(err)
		}
		for _, a := range all {
			if !isOverlayXattr(a) {
				names = append(names, a)
			}
		}
	} else if s.lower != nil {
		for a := range s.lower.e.Xattrs {
			names = append(names, a)
		}
	}
	sz := 0
	for _, a := range names {
		sz += len(a) + 1
	}
	if len(dest) == 0 {
		return uint32(sz), 0
	}
	if len(dest) < sz {
		return uint32(sz), syscall.ERANGE
	}
	off := 0
	for _, a := range names {
		off += copy(dest[off:], a)
		dest[off] = 0
		off++
	}
	return uint32(sz), 0
}

var _ = (fs.NodeStatfser)((*node)(nil))

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	p := n.fsys.upper
	if p == "" {
		if d, ok := firstDirSource(n.fsys.t.sources); ok {
			p = d
		} else {
			p = "/"
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	return 0
}

func firstDirSource(srcs []Source) (string, bool) {
	for _, s := range srcs {
		if d, ok := s.(*DirSource); ok {
			return d.root, true
		}
	}
	return "", false
}

var _ = (fs.NodeOpener)((*node)(nil))

// Open serves a lower file from the layer's file (FUSE passthrough for a
// big one where the kernel allows it; a small one in caching mode with
// FOPEN_KEEP_CACHE, opened at the first READ) or from memory, and an
// upper file from the upper dir. Opening for writing or with O_TRUNC copies
// the file up first (without its data for O_TRUNC).
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	l := n.fsys
	write := flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 || flags&syscall.O_TRUNC != 0
	if write {
		if l.upper == "" {
			return nil, 0, syscall.EROFS
		}
		l.mu.Lock()
		errno := n.copyUp(ctx, flags&syscall.O_TRUNC == 0)
		if errno == 0 {
			_, errno = n.unshare(ctx)
		}
		if errno == 0 {
			l.journal.record(journalPath(n.relPath()), ChangeModify)
		}
		l.mu.Unlock()
		if errno != 0 {
			return nil, 0, errno
		}
	}
	s := n.state()
	if s.upper && !s.metacopy {
		n.mu.Lock()
		stale := n.ptLower
		n.mu.Unlock()
		if stale {
			// The kernel inode still has the lower file as its
			// passthrough backing file, and every open of it would
			// have to use it. Retire the inode: the next lookup makes
			// a new one, and ESTALE makes open(2) look up again.
			l.retire(n)
			return nil, 0, syscall.ESTALE
		}
		fl := int(flags) &^ (syscall.O_CREAT | syscall.O_EXCL | syscall.O_NOCTTY)
		f, err := openFile(n.upperPath(), fl|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, syscall.ENXIO) {
			// a whiteout: the name was removed or renamed away
			// between the kernel's lookup and this open
			return nil, 0, syscall.ENOENT
		}
		if err != nil {
			return nil, 0, fs.ToErrno(err)
		}
		// The node's path may lead elsewhere by now (it was renamed
		// over while the kernel held it): check the object we opened.
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || (s.uino != 0 && st.Ino != s.uino) {
			f.Close()
			return nil, 0, syscall.ENOENT
		}
		n.mu.Lock()
		want := !n.ptLower
		n.mu.Unlock()
		return newHandle(n, f, true, n.openMode(want)), 0, 0
	}
	if s.lower == nil || s.lower.e.Type != cas.TypeRegular {
		return nil, 0, syscall.EIO
	}
	if !n.openMode(s.lower.e.Size >= passthroughMin) {
		return &lowerHandle{src: l.t.sources[s.lower.src], e: s.lower.e, n: n}, fuse.FOPEN_KEEP_CACHE, 0
	}
	c, err := l.t.sources[s.lower.src].Open(ctx, s.lower.e)
	if err != nil {
		n.released(true)
		l.logf("layerfs: open %s: %v", n.relPath(), err)
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, syscall.ENOENT
		}
		return nil, 0, syscall.EIO
	}
	if c.File == nil {
		n.mu.Lock()
		n.ptOpens--
		n.cachedOpens++
		n.mu.Unlock()
		return &memHandle{data: c.Data, n: n}, fuse.FOPEN_KEEP_CACHE, 0
	}
	n.mu.Lock()
	n.ptLower = true
	n.mu.Unlock()
	return newHandle(n, c.File, false, true), fuse.FOPEN_KEEP_CACHE, 0
}

// sysStat views x/sys's Stat_t as the syscall one go-fuse takes; on Linux
// they have the same layout.
func sysStat(st *unix.Stat_t) *syscall.Stat_t { return (*syscall.Stat_t)(unsafe.Pointer(st)) }

// openFile opens an upper file with one open(2) and one fcntl(2).
// os.OpenFile would also try to register the file with the runtime's
// poller and toggle O_NONBLOCK: four fcntl(2) and a failed epoll_ctl(2)
// for a regular file, on every create and open.
func openFile(p string, flags int, mode uint32) (*os.File, error) {
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, mode)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

var _ = (fs.NodeOpendirHandler)((*node)(nil))

// OpendirHandle lets the kernel keep the listing of a directory that
// shows lower content only (FOPEN_CACHE_DIR): a second readdir of it is
// answered from the kernel's cache without a READDIRPLUS round trip and
// without this process building the list again. That is safe because such
// a listing changes only through a request on the directory itself
// (create, unlink, rename, which copy it up), after which the kernel
// bumps the directory's version and drops the cached listing. Other
// directories are listed afresh on every open.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	var fl uint32
	if s := n.state(); !s.upper && s.lowerDir() != nil {
		fl = fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	return &dirHandle{n: n}, fl, 0
}

// dirHandle is an open directory: the listing Readdir makes, built on
// the first read and kept until it is closed or rewound to the start.
type dirHandle struct {
	n  *node
	ds fs.DirStream
}

var (
	_ = (fs.FileReaddirenter)((*dirHandle)(nil))
	_ = (fs.FileSeekdirer)((*dirHandle)(nil))
	_ = (fs.FileReleasedirer)((*dirHandle)(nil))
)

func (d *dirHandle) list(ctx context.Context) syscall.Errno {
	if d.ds != nil {
		return 0
	}
	ds, errno := d.n.Readdir(ctx)
	if errno != 0 {
		return errno
	}
	d.ds = ds
	return 0
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if errno := d.list(ctx); errno != 0 {
		return nil, errno
	}
	if !d.ds.HasNext() {
		return nil, 0
	}
	e, errno := d.ds.Next()
	return &e, errno
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == 0 && d.ds != nil {
		d.ds.Close() // rewinddir: list again
		d.ds = nil
	}
	if errno := d.list(ctx); errno != 0 {
		return errno
	}
	if sd, ok := d.ds.(fs.FileSeekdirer); ok {
		return sd.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if d.ds != nil {
		d.ds.Close()
	}
}
