package commit

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs"
)

// Sentinel errors of layer generation; test them with errors.Is.
var (
	// ErrMountChanged reports a file that changed while the layer was
	// being written (a running container that was not paused), or a path
	// the change list names that the merged view no longer shows.
	ErrMountChanged = errors.New("container file system changed during commit")
	// ErrUnstorable reports a path a layer tar cannot carry: a name that
	// would read as a whiteout (".wh." prefix), or a file of a type tar
	// has no entry for.
	ErrUnstorable = errors.New("cannot be stored in a layer")
)

// Overlayfs's on-disk names and attributes, as layerfs writes them in the
// upper dir (kernel overlayfs's format; see the layerfs package doc).
const (
	whiteoutPrefix = ".wh."
	opaqueName     = ".wh..wh..opq"
	xattrOpaque    = "trusted.overlay.opaque"
	xattrRedirect  = "trusted.overlay.redirect"
	xattrMetacopy  = "trusted.overlay.metacopy"
)

// Mount is a container's writable union mount as plain data: where its
// merged view can be read, its upper dir, and its recorded changes. The
// daemon fills it from the container's layerfs mount (Target, UpperDir,
// Journal().Changes()); this package never mounts anything.
type Mount struct {
	// Merged is the directory where the merged view is mounted: the
	// container's root file system as its processes see it.
	Merged string
	// Upper is the mount's upper dir, in overlayfs's format. It tells
	// opaque and renamed directories apart and lets file bytes be read
	// without a round trip through the mount.
	Upper string
	// Changes is the change journal's list (layerfs.Journal.Changes).
	Changes []layerfs.Change
	// Lower, for a stopped container (Merged empty), lists the image's
	// contents of a directory the container renamed, so that Diff needs
	// no mount (see IndexLower). Commit does not use it.
	Lower LowerLister
}

// itemKind is what one tar entry of the layer is made from.
type itemKind uint8

const (
	itemFile     itemKind = iota // a path of the merged view
	itemWhiteout                 // .wh.NAME: a deleted path
	itemOpaque                   // .wh..wh..opq: a directory that hides the layers below
)

type item struct {
	kind itemKind
	st   unix.Stat_t // itemFile: its lstat
	src  string      // itemFile: the upper dir's object, or else the merged view's
}

// layerPlan is the sorted list of tar entries a change list becomes.
type layerPlan struct {
	m     Mount
	names []string
	items map[string]*item
}

// plan works out every entry of the layer: O(changes), plus the subtrees of
// added, replaced and renamed directories, which are part of the change.
func plan(ctx context.Context, m Mount) (*layerPlan, error) {
	changes, err := Changes(m.Changes)
	if err != nil {
		return nil, err
	}
	p := &layerPlan{m: m, items: map[string]*item{}}
	for _, c := range changes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rel := strings.TrimPrefix(c.Path, "/")
		switch c.Kind {
		case layerfs.ChangeDelete:
			if err := p.add(path.Join(path.Dir(rel), whiteoutPrefix+path.Base(rel)), &item{kind: itemWhiteout}); err != nil {
				return nil, err
			}
		case layerfs.ChangeAdd, layerfs.ChangeModify:
			st, src, err := p.stat(rel)
			if err != nil {
				return nil, err
			}
			if err := p.add(rel, &item{kind: itemFile, st: st, src: src}); err != nil {
				return nil, err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			// An added directory stands for its subtree. A changed one is
			// only its own header, unless it replaces the directory below
			// (opaque) or is a renamed one (redirect): then the layer
			// hides what lies below and carries the whole subtree.
			whole := c.Kind == layerfs.ChangeAdd
			if c.Kind == layerfs.ChangeModify && p.replacesBelow(rel) {
				whole = true
				if err := p.add(path.Join(rel, opaqueName), &item{kind: itemOpaque}); err != nil {
					return nil, err
				}
			}
			if whole {
				if err := p.walk(ctx, rel); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("%w: %s: unknown kind %d", ErrBadChangeList, c.Path, c.Kind)
		}
	}
	if err := p.findLinks(ctx); err != nil {
		return nil, err
	}
	p.prune()
	p.names = make([]string, 0, len(p.items))
	for n := range p.items {
		p.names = append(p.names, n)
	}
	sort.Strings(p.names)
	return p, nil
}

// add records one entry; a path met twice (listed and inside a walked
// subtree) is kept once.
func (p *layerPlan) add(name string, it *item) error {
	if it.kind == itemFile && strings.HasPrefix(path.Base(name), whiteoutPrefix) {
		return fmt.Errorf("/%s: %w: the name reads as a whiteout", name, ErrUnstorable)
	}
	if _, ok := p.items[name]; !ok {
		p.items[name] = it
	}
	return nil
}

func (p *layerPlan) merged(rel string) string { return filepath.Join(p.m.Merged, rel) }
func (p *layerPlan) upper(rel string) string  { return filepath.Join(p.m.Upper, rel) }

// stat describes a path as the container sees it. An object of the upper
// dir is what the merged view shows at its path (layerfs serves upper
// objects' metadata as they are, a metacopy file included), so it is read
// there: no round trip through the mount, and no attribute the kernel
// cached before a copy-up changed it. Paths only the lower layers hold
// are read through the merged view.
func (p *layerPlan) stat(rel string) (unix.Stat_t, string, error) {
	var st unix.Stat_t
	if p.m.Upper != "" {
		u := p.upper(rel)
		if err := unix.Lstat(u, &st); err == nil && !(st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0) {
			return st, u, nil
		}
	}
	m := p.merged(rel)
	if err := unix.Lstat(m, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return st, "", fmt.Errorf("/%s: %w: listed as changed but not there", rel, ErrMountChanged)
		}
		return st, "", fmt.Errorf("stat /%s: %w", rel, err)
	}
	return st, m, nil
}

// findLinks adds the other names of upper files that have more names than
// the change list shows. A link(2) to a lower file copies the file up and
// journals only the new name, yet both names now share the upper file and
// must share it in the layer too. Finding them takes a walk of the upper
// dir (which holds only changed objects and their parents), and only when
// such a file exists.
func (p *layerPlan) findLinks(ctx context.Context) error {
	if p.m.Upper == "" {
		return nil
	}
	nlink := map[[2]uint64]uint64{}
	seen := map[[2]uint64]uint64{}
	for _, it := range p.items {
		if it.kind == itemFile && it.st.Mode&unix.S_IFMT != unix.S_IFDIR && it.st.Nlink > 1 && strings.HasPrefix(it.src, p.m.Upper) {
			n := uint64(it.st.Nlink)
			if _, err := unix.Lgetxattr(it.src, cas.XattrShared, nil); err == nil {
				n-- // one name is the store's object (an earlier commit adopted it)
			}
			if n <= 1 {
				continue
			}
			k := [2]uint64{it.st.Dev, it.st.Ino}
			nlink[k] = n
			seen[k]++
		}
	}
	short := false
	for k, n := range nlink {
		if seen[k] < n {
			short = true
		}
	}
	if !short {
		return nil
	}
	return filepath.WalkDir(p.m.Upper, func(full string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(full, &st); err != nil {
			return err
		}
		k := [2]uint64{st.Dev, st.Ino}
		if _, ok := nlink[k]; !ok {
			return nil
		}
		rel, err := filepath.Rel(p.m.Upper, full)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, ok := p.items[rel]; ok {
			return nil
		}
		p.items[rel] = &item{kind: itemFile, st: st, src: full}
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if _, ok := p.items[d]; ok {
				break
			}
			dst, src, err := p.stat(d)
			if err != nil {
				return err
			}
			p.items[d] = &item{kind: itemFile, st: dst, src: src}
		}
		return nil
	})
}

// prune drops what lies below a non-directory: the deletions recorded in a
// directory that a file has since replaced.
func (p *layerPlan) prune() {
	for name := range p.items {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if it, ok := p.items[d]; ok && it.kind == itemFile && it.st.Mode&unix.S_IFMT != unix.S_IFDIR {
				delete(p.items, name)
				break
			}
		}
	}
}

// replacesBelow reports whether the upper directory at rel hides the lower
// one: opaque (made again after a delete) or redirected (renamed from
// elsewhere, so it shows another directory's lower contents).
func (p *layerPlan) replacesBelow(rel string) bool {
	u := p.upper(rel)
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(u, xattrOpaque, buf); err == nil && string(buf[:n]) == "y" {
		return true
	}
	_, err := unix.Lgetxattr(u, xattrRedirect, nil)
	return err == nil
}

// walk adds everything under the merged directory rel.
func (p *layerPlan) walk(ctx context.Context, rel string) error {
	ents, err := os.ReadDir(p.merged(rel))
	if err != nil {
		return fmt.Errorf("read /%s: %w", rel, err)
	}
	for _, de := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		child := path.Join(rel, de.Name())
		st, src, err := p.stat(child)
		if err != nil {
			return err
		}
		if err := p.add(child, &item{kind: itemFile, st: st, src: src}); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := p.walk(ctx, child); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteLayer writes the layer tar of a container's changes to w: entries
// sorted by name, so the same changes give the same bytes; deleted paths
// as ".wh.NAME"; directories that hide the ones below (made again after a
// delete, or renamed) as ".wh..wh..opq" followed by their whole subtree; a
// file whose metadata alone changed (a metacopy file in the upper dir) with
// its full bytes and new metadata; hard links as tar hard links to the
// first name; extended attributes as PAX SCHILY.xattr records; times in
// whole seconds, and no user or group names, as Docker writes layers.
// Sockets are left out, as Docker leaves them out.
//
// Metadata comes from the merged view, so the layer is what the container
// sees; bytes come from the upper dir where it holds them, else through the
// merged view.
func WriteLayer(ctx context.Context, w io.Writer, m Mount) error {
	p, err := plan(ctx, m)
	if err != nil {
		return err
	}
	return p.write(ctx, w)
}

func (p *layerPlan) write(ctx context.Context, w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{} // (device, inode) → first name written
	buf := make([]byte, 1<<20)
	for _, name := range p.names {
		if err := ctx.Err(); err != nil {
			return err
		}
		it := p.items[name]
		switch it.kind {
		case itemWhiteout, itemOpaque:
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, ModTime: time.Unix(0, 0)}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("write layer: %w", err)
			}
			continue
		}
		hdr, err := p.header(name, it)
		if err != nil {
			return err
		}
		if hdr == nil {
			continue // a socket
		}
		if hdr.Typeflag != tar.TypeDir {
			key := [2]uint64{it.st.Dev, it.st.Ino}
			if first, ok := links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				if err := tw.WriteHeader(hdr); err != nil {
					return fmt.Errorf("write layer: %w", err)
				}
				continue
			}
			links[key] = name
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write layer: %w", err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			if err := p.copyData(tw, name, it.src, hdr.Size, buf); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	return nil
}

// header is the tar header of a path; nil for a socket.
func (p *layerPlan) header(name string, it *item) (*tar.Header, error) {
	st := &it.st
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 07777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
	}
	full := it.src
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		target, err := os.Readlink(full)
		if err != nil {
			return nil, fmt.Errorf("read link /%s: %w", name, err)
		}
		hdr.Linkname = target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		return nil, nil
	default:
		return nil, fmt.Errorf("/%s: %w: file type %#o", name, ErrUnstorable, st.Mode&unix.S_IFMT)
	}
	xa, err := xattrs(full)
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", name, err)
	}
	if len(xa) > 0 {
		hdr.PAXRecords = map[string]string{}
		for k, v := range xa {
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	return hdr, nil
}

// copyData copies a regular file's size bytes into the tar from src, the
// upper dir's file, unless that is a metacopy file (its bytes are still in
// a lower layer): then through the merged view. A file shorter than its
// header said changed meanwhile.
func (p *layerPlan) copyData(w io.Writer, name, src string, size int64, buf []byte) error {
	if src != p.merged(name) {
		if _, err := unix.Lgetxattr(src, xattrMetacopy, nil); err == nil {
			src = p.merged(name)
		}
	}
	f, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open /%s: %w", name, err)
	}
	defer f.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(f, size), buf)
	if err != nil {
		return fmt.Errorf("read /%s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("/%s: %w: %d bytes, %d expected", name, ErrMountChanged, n, size)
	}
	return nil
}

// xattrs lists a path's extended attributes but overlayfs's and layerfs's
// own bookkeeping (which the merged view hides too).
func xattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENODATA) {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	if sz == 0 {
		return nil, nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") || strings.HasPrefix(name, "trusted.fusebox.") {
			continue
		}
		vsz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("read xattr %s: %w", name, err)
		}
		val := make([]byte, vsz)
		if vsz > 0 {
			if vsz, err = unix.Lgetxattr(p, name, val); err != nil {
				return nil, fmt.Errorf("read xattr %s: %w", name, err)
			}
		}
		out[name] = string(val[:vsz])
	}
	return out, nil
}

// offer hands the store the upper dir's file of a regular-file entry, so
// that it can reflink the bytes instead of writing them again. Files read
// through the merged view (lower data, metacopy files) are not offered.
func (p *layerPlan) offer(name string, size int64) *os.File {
	it, ok := p.items[name]
	if !ok || it.kind != itemFile || it.st.Size != size || it.src == p.merged(name) {
		return nil
	}
	if _, err := unix.Lgetxattr(it.src, xattrMetacopy, nil); err == nil {
		return nil
	}
	f, err := os.OpenFile(it.src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	return f
}

// errIngestEnded is what the tar writer meets when the store stopped
// reading first; the store's error is the one to report then.
var errIngestEnded = errors.New("layer ingest ended")

// Ingester is the part of the store a layer is written into.
type Ingester interface {
	IngestLayer(ctx context.Context, r io.Reader, opts cas.IngestOptions) (cas.LayerInfo, error)
}

var _ Ingester = (*cas.Store)(nil)

// IngestLayer writes the layer of m's changes into the store: the tar is
// produced into a pipe as the store reads it (hashing as it goes), so no
// layer is ever held in memory or written to a temporary file.
func IngestLayer(ctx context.Context, store Ingester, m Mount, opts cas.IngestOptions) (cas.LayerInfo, error) {
	p, err := plan(ctx, m)
	if err != nil {
		return cas.LayerInfo{}, fmt.Errorf("commit layer: %w", err)
	}
	if opts.Files == nil {
		opts.Files = p.offer
	}
	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := p.write(ctx, pw)
		pw.CloseWithError(err)
		werr <- err
	}()
	info, err := store.IngestLayer(ctx, pr, opts)
	pr.CloseWithError(errIngestEnded) // unblocks the writer if the store stopped early
	if wErr := <-werr; wErr != nil && (err == nil || !errors.Is(wErr, errIngestEnded)) {
		return cas.LayerInfo{}, fmt.Errorf("commit layer: %w", wErr)
	}
	if err != nil {
		return cas.LayerInfo{}, fmt.Errorf("commit layer: %w", err)
	}
	return info, nil
}
