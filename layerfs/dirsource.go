package layerfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
)

// Names and attributes of overlayfs's on-disk format.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"

	xattrOpaque   = "trusted.overlay.opaque"
	xattrRedirect = "trusted.overlay.redirect"
	xattrMetacopy = "trusted.overlay.metacopy"
	userOpaque    = "user.overlay.opaque"

	// xattrOrigin holds, on a copied-up non-directory, the inode number
	// it had in the lower view (8 bytes, big-endian), so the number
	// survives copy-up, rename and remount. Kernel overlayfs ignores it.
	xattrOrigin = "trusted.fusebox.origin"
)

// DirSource is a layer kept as a plain directory in overlayfs's on-disk
// format: 0/0 character devices are whiteouts, a directory with
// trusted.overlay.opaque or user.overlay.opaque set to "y" is opaque, and
// the tar-style names ".wh.NAME" and ".wh..wh..opq" are accepted too.
// Hard links inside the directory become cas.TypeHardlink entries. A
// directory that holds overlayfs redirects or metacopy files (an upper dir
// written with redirect_dir or metacopy) is refused with ErrBadLayer:
// layerfs does not follow them in lower layers.
type DirSource struct {
	root string
	id   string
}

var _ Source = (*DirSource)(nil)

// NewDirSource returns a source for the directory root. The directory must
// not change while a mount uses it.
func NewDirSource(root string) (*DirSource, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("layer dir %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("layer dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("layer dir %s: %w", root, syscall.ENOTDIR)
	}
	st := fi.Sys().(*syscall.Stat_t)
	// The ID names the directory (device, inode, path) and its change time,
	// so a directory replaced at the same path gets a new cache entry.
	id := fmt.Sprintf("dir:%d:%d:%d.%d:%s", st.Dev, st.Ino, st.Ctim.Sec, st.Ctim.Nsec, abs)
	return &DirSource{root: abs, id: id}, nil
}

// ID implements Source.
func (d *DirSource) ID() string { return d.id }

// Root is the directory the source reads.
func (d *DirSource) Root() string { return d.root }

// walkWorkers bounds how many directories of a layer are listed at once.
// Listing a layer costs an lstat and a listxattr per file: in parallel
// they overlap on both CPUs and, with a cold cache, keep the disk's queue
// full instead of waiting for one inode at a time.
const walkWorkers = 8

// dirList is what listing one directory of a layer found: its children in
// name order, each with the listing of its own subdirectory, if any.
type dirList struct {
	children []walked
}

// walked is one path of a layer: the entries it stands for (none for an
// unsupported name; two for an opaque directory) and, for a regular file
// with other links, its device and inode, to tell hard links apart.
type walked struct {
	entries []cas.Entry
	link    [2]uint64
	sub     *dirList // a directory's children
}

// Entries implements Source: it walks the directory once, listing several
// directories at a time. The entries come in the order of a depth-first
// walk in name order (filepath.WalkDir's), whatever order the listings
// finish in, so the first path of a hard link is always the same one.
func (d *DirSource) Entries(ctx context.Context) ([]cas.Entry, error) {
	w := &walker{ctx: ctx, root: d.root, sem: make(chan struct{}, walkWorkers)}
	top, err := w.entry(d.root, ".")
	if err != nil {
		return nil, fmt.Errorf("list layer dir %s: %w", d.root, err)
	}
	if top.sub != nil {
		w.wg.Add(1)
		w.sem <- struct{}{}
		w.list(d.root, ".", top.sub)
	}
	w.wg.Wait()
	if w.err != nil {
		return nil, fmt.Errorf("list layer dir %s: %w", d.root, w.err)
	}
	var out []cas.Entry
	links := map[[2]uint64]string{}
	var flatten func(x walked)
	flatten = func(x walked) {
		if x.link != [2]uint64{} && len(x.entries) == 1 {
			rel := x.entries[0].Path
			if first, ok := links[x.link]; ok {
				out = append(out, cas.Entry{Path: rel, Type: cas.TypeHardlink, Linkname: first})
				return
			}
			links[x.link] = rel
		}
		out = append(out, x.entries...)
		if x.sub != nil {
			for _, c := range x.sub.children {
				flatten(c)
			}
		}
	}
	flatten(top)
	return out, nil
}

// walker lists a layer directory with up to walkWorkers directories at
// once; the first error stops it.
type walker struct {
	ctx  context.Context
	root string
	sem  chan struct{}
	wg   sync.WaitGroup

	mu  sync.Mutex
	err error
}

func (w *walker) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *walker) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

// list fills into with the children of the directory p (rel in the
// layer), then lists the subdirectories, each in a goroutine of its own.
// The caller holds a slot of w.sem and has counted the call in w.wg.
func (w *walker) list(p, rel string, into *dirList) {
	defer w.wg.Done()
	err := func() error {
		defer func() { <-w.sem }()
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if w.failed() {
			return nil
		}
		des, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return err
		}
		into.children = make([]walked, 0, len(des))
		for _, de := range des {
			name := de.Name()
			crel := name
			if rel != "." {
				crel = rel + "/" + name
			}
			x, err := w.entry(filepath.Join(p, name), crel)
			if err != nil {
				return err
			}
			into.children = append(into.children, x)
		}
		return nil
	}()
	if err != nil {
		w.fail(err)
		return
	}
	for _, c := range into.children {
		if c.sub == nil {
			continue
		}
		w.wg.Add(1)
		go func(c walked) {
			w.sem <- struct{}{}
			w.list(filepath.Join(w.root, c.entries[0].Path), c.entries[0].Path, c.sub)
		}(c)
	}
}

// entry reads one path of the layer: what filepath.WalkDir's callback did
// for it.
func (w *walker) entry(p, rel string) (walked, error) {
	var x walked
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return x, err
	}
	base := path.Base(rel)
	dir := path.Dir(rel)
	switch {
	case base == opaqueMarker:
		x.entries = []cas.Entry{{Path: dir, Type: cas.TypeOpaque}}
		return x, nil
	case strings.HasPrefix(base, whiteoutPrefix) && rel != ".":
		x.entries = []cas.Entry{{Path: path.Join(dir, base[len(whiteoutPrefix):]), Type: cas.TypeWhiteout}}
		return x, nil
	}
	e := cas.Entry{
		Path:    rel,
		Mode:    st.Mode & 07777,
		UID:     st.Uid,
		GID:     st.Gid,
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = cas.TypeDir
		x.sub = &dirList{}
	case unix.S_IFREG:
		e.Type = cas.TypeRegular
		e.Size = st.Size
		if st.Nlink > 1 {
			x.link = [2]uint64{st.Dev, st.Ino}
		}
	case unix.S_IFLNK:
		e.Type = cas.TypeSymlink
		target, err := os.Readlink(p)
		if err != nil {
			return x, err
		}
		e.Linkname = target
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			x.entries = []cas.Entry{{Path: rel, Type: cas.TypeWhiteout}}
			return x, nil
		}
		e.Type = cas.TypeChar
	case unix.S_IFBLK:
		e.Type = cas.TypeBlock
	case unix.S_IFIFO:
		e.Type = cas.TypeFifo
	default:
		return x, fmt.Errorf("%s: %w: unsupported file type %#o", rel, ErrBadLayer, st.Mode&unix.S_IFMT)
	}
	if e.Type == cas.TypeChar || e.Type == cas.TypeBlock {
		e.Devmajor, e.Devminor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	}
	xa, opaque, err := readXattrs(p)
	if err != nil {
		return x, err
	}
	e.Xattrs = xa
	x.entries = []cas.Entry{e}
	if opaque && e.Type == cas.TypeDir {
		x.entries = append(x.entries, cas.Entry{Path: rel, Type: cas.TypeOpaque})
	}
	return x, nil
}

// Open implements Source.
func (d *DirSource) Open(ctx context.Context, e *cas.Entry) (Content, error) {
	if e.Type != cas.TypeRegular {
		return Content{}, fmt.Errorf("open %s: %w", e.Path, ErrNotRegular)
	}
	f, err := openFile(filepath.Join(d.root, e.Path), unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return Content{}, fmt.Errorf("open layer file: %w", err)
	}
	return Content{File: f}, nil
}

// readXattrs returns a path's extended attributes without overlayfs's own
// ones, and whether they mark the directory opaque.
func readXattrs(p string) (map[string][]byte, bool, error) {
	names, err := listXattr(p)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	var out map[string][]byte
	opaque := false
	for _, name := range names {
		val, err := getXattr(p, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, false, fmt.Errorf("read xattr %s of %s: %w", name, p, err)
		}
		if isOverlayXattr(name) {
			if (name == xattrOpaque || name == userOpaque) && bytes.Equal(val, []byte("y")) {
				opaque = true
			}
			if strings.HasSuffix(name, ".overlay.redirect") || strings.HasSuffix(name, ".overlay.metacopy") {
				// Serving it as a plain file or directory would show
				// wrong bytes or lose entries.
				return nil, false, fmt.Errorf("%s: %w: %s in a lower layer is not supported", p, ErrBadLayer, name)
			}
			continue
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[name] = val
	}
	return out, opaque, nil
}

func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") ||
		strings.HasPrefix(name, "trusted.fusebox.")
}

func listXattr(p string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err2 := unix.Llistxattr(p, nil)
			if err2 != nil {
				return nil, err2
			}
			buf = make([]byte, sz+64)
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range bytes.Split(buf[:n], []byte{0}) {
			if len(s) > 0 {
				names = append(names, string(s))
			}
		}
		return names, nil
	}
}

func getXattr(p, name string) ([]byte, error) {
	buf := make([]byte, 128)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err2 := unix.Lgetxattr(p, name, nil)
			if err2 != nil {
				return nil, err2
			}
			buf = make([]byte, sz+64)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n:n], nil
	}
}
