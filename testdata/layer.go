package testdata

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// epoch is the one timestamp every fixture uses: file mtimes, and the base of
// the config's created times. A fixed instant is what makes the bytes, and so
// the image IDs, the same on every run and every machine.
var epoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// kind says what an entry of a layer is. Whiteouts and opaque markers are
// kinds of their own rather than specially named files so that each writer
// renders them in its own format: `.wh.` names in a tar, 0/0 character
// devices and the trusted.overlay.opaque xattr in an overlayfs lower dir.
type kind int

const (
	kindDir kind = iota
	kindFile
	kindSymlink
	kindChar
	kindBlock
	kindFifo
	kindWhiteout // path is the name the layer deletes
	kindOpaque   // path is the directory whose lower contents the layer hides
)

// content is the data of a regular file. Entries that share one *content are
// hard links of each other; the writers pick the first path in sorted order as
// the file and link the others to it, as tar does when it archives a tree.
type content struct {
	size int64
	open func() (io.ReadCloser, error)
}

func bytesContent(b []byte) *content {
	return &content{size: int64(len(b)), open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(string(b))), nil
	}}
}

func fileContent(p string, size int64) *content {
	return &content{size: size, open: func() (io.ReadCloser, error) { return os.Open(p) }}
}

// entry is one path of a layer, relative to the layer's root, without a
// leading or trailing slash.
type entry struct {
	path         string
	kind         kind
	mode         uint32 // permission bits, including setuid, setgid and sticky
	uid, gid     int
	link         string // symlink target
	data         *content
	major, minor uint32
}

func dir(p string, mode uint32) entry { return entry{path: p, kind: kindDir, mode: mode} }

func file(p string, mode uint32, data *content) entry {
	return entry{path: p, kind: kindFile, mode: mode, data: data}
}

func text(p string, mode uint32, s string) entry { return file(p, mode, bytesContent([]byte(s))) }

func symlink(p, target string) entry {
	return entry{path: p, kind: kindSymlink, mode: 0o777, link: target}
}

func whiteout(p string) entry { return entry{path: p, kind: kindWhiteout} }

func opaque(p string) entry { return entry{path: p, kind: kindOpaque} }

func (e entry) owned(uid, gid int) entry { e.uid, e.gid = uid, gid; return e }

// sortEntries orders entries by path, which puts every directory before its
// contents, and returns for each shared *content the path that carries the
// bytes (the first in that order); later paths become hard links to it.
func sortEntries(es []entry) ([]entry, map[*content]string) {
	es = slices.Clone(es)
	slices.SortStableFunc(es, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	leaders := map[*content]string{}
	for _, e := range es {
		if e.kind == kindFile {
			if _, ok := leaders[e.data]; !ok {
				leaders[e.data] = e.path
			}
		}
	}
	return es, leaders
}

// writeTar writes es as a layer tar in Docker's format: directories with a
// trailing slash, whiteouts as empty `.wh.NAME` files, an opaque directory as
// an empty `DIR/.wh..wh..opq`, every header with the fixed epoch and no user
// or group names.
func writeTar(w io.Writer, es []entry) error {
	es, leaders := sortEntries(es)
	tw := tar.NewWriter(w)
	for _, e := range es {
		hdr := &tar.Header{
			Name:    e.path,
			Mode:    int64(e.mode),
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: epoch,
		}
		switch e.kind {
		case kindDir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.path+"/"
		case kindFile:
			if leader := leaders[e.data]; leader != e.path {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, leader
			} else {
				hdr.Typeflag, hdr.Size = tar.TypeReg, e.data.size
			}
		case kindSymlink:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		case kindChar, kindBlock:
			hdr.Typeflag = tar.TypeChar
			if e.kind == kindBlock {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor, hdr.Devminor = int64(e.major), int64(e.minor)
		case kindFifo:
			hdr.Typeflag = tar.TypeFifo
		case kindWhiteout:
			hdr.Typeflag, hdr.Mode = tar.TypeReg, 0o600
			hdr.Name = path.Join(path.Dir(e.path), ".wh."+path.Base(e.path))
		case kindOpaque:
			hdr.Typeflag, hdr.Mode = tar.TypeReg, 0o600
			hdr.Name = path.Join(e.path, ".wh..wh..opq")
		default:
			return fmt.Errorf("tar entry %s: unknown kind %d", e.path, e.kind)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar entry %s: %w", e.path, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			if err := copyContent(tw, e); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func copyContent(w io.Writer, e entry) error {
	r, err := e.data.open()
	if err != nil {
		return fmt.Errorf("open content of %s: %w", e.path, err)
	}
	defer r.Close()
	n, err := io.Copy(w, io.LimitReader(r, e.data.size))
	if err != nil {
		return fmt.Errorf("copy content of %s: %w", e.path, err)
	}
	if n != e.data.size {
		return fmt.Errorf("content of %s: %d bytes, want %d", e.path, n, e.data.size)
	}
	return nil
}

// writeDir materialises es under root, which must exist, in overlayfs's
// on-disk format for a lower directory: a whiteout is a 0/0 character device
// and an opaque directory carries trusted.overlay.opaque=y. Owners, modes and
// the fixed mtime are set on every path; it needs root, as overlayfs does.
func writeDir(root string, es []entry) error {
	es, leaders := sortEntries(es)
	for _, e := range es {
		p := filepath.Join(root, e.path)
		var err error
		switch e.kind {
		case kindDir:
			err = os.Mkdir(p, 0o700)
			if os.IsExist(err) {
				err = nil
			}
		case kindFile:
			if leader := leaders[e.data]; leader != e.path {
				err = os.Link(filepath.Join(root, leader), p)
			} else {
				err = writeFile(p, e)
			}
		case kindSymlink:
			err = os.Symlink(e.link, p)
		case kindChar:
			err = unix.Mknod(p, unix.S_IFCHR|e.mode, int(unix.Mkdev(e.major, e.minor)))
		case kindBlock:
			err = unix.Mknod(p, unix.S_IFBLK|e.mode, int(unix.Mkdev(e.major, e.minor)))
		case kindFifo:
			err = unix.Mkfifo(p, e.mode)
		case kindWhiteout:
			err = unix.Mknod(p, unix.S_IFCHR, 0)
		case kindOpaque:
			if err = os.Mkdir(p, 0o700); os.IsExist(err) {
				err = nil
			}
			if err == nil {
				err = unix.Setxattr(p, "trusted.overlay.opaque", []byte("y"), 0)
			}
		default:
			err = fmt.Errorf("unknown kind %d", e.kind)
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", e.path, err)
		}
	}
	// Owners and modes after the content (chown clears setuid), mtimes last
	// and deepest first, since creating a child touches its parent.
	ts := []unix.Timespec{unix.NsecToTimespec(epoch.UnixNano()), unix.NsecToTimespec(epoch.UnixNano())}
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		p := filepath.Join(root, e.path)
		if e.kind == kindOpaque && slices.ContainsFunc(es, func(o entry) bool { return o.kind == kindDir && o.path == e.path }) {
			continue // the directory's own entry sets its metadata
		}
		if err := os.Lchown(p, e.uid, e.gid); err != nil {
			return fmt.Errorf("chown %s: %w", e.path, err)
		}
		if e.kind != kindSymlink && e.kind != kindWhiteout {
			mode := e.mode
			if e.kind == kindOpaque {
				mode = 0o755
			}
			if err := unix.Chmod(p, mode); err != nil {
				return fmt.Errorf("chmod %s: %w", e.path, err)
			}
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set mtime of %s: %w", e.path, err)
		}
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, root, ts, 0)
}

func writeFile(p string, e entry) (err error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if e.data.size == 0 {
		return nil
	}
	return copyContent(f, e)
}

// merge applies layers bottom first the way a union mount shows them: a
// whiteout removes the path and everything below it, an opaque directory hides
// everything below it from the layers underneath, and an upper entry replaces
// a lower one. Hard links stay shared because entries keep their *content.
func merge(layers ...[]entry) []entry {
	view := map[string]entry{}
	removeUnder := func(p string, self bool) {
		for k := range view {
			if (self && k == p) || strings.HasPrefix(k, p+"/") {
				delete(view, k)
			}
		}
	}
	for _, l := range layers {
		for _, e := range l {
			switch e.kind {
			case kindWhiteout:
				removeUnder(e.path, true)
			case kindOpaque:
				removeUnder(e.path, false)
			}
		}
		for _, e := range l {
			switch e.kind {
			case kindWhiteout:
			case kindOpaque:
				if _, ok := view[e.path]; !ok {
					view[e.path] = dir(e.path, 0o755)
				}
			default:
				if old, ok := view[e.path]; ok && old.kind == kindDir && e.kind != kindDir {
					removeUnder(e.path, false)
				}
				view[e.path] = e
			}
		}
	}
	out := make([]entry, 0, len(view))
	for _, e := range view {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	return out
}
