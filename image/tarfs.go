package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// ErrBadArchive is returned for an archive that is not a readable
// docker-archive or OCI layout: truncated, corrupt, escaping paths, missing
// or mismatched blobs.
var ErrBadArchive = errors.New("invalid image archive")

// tarFS is a read-only fs.FS over a tar file on disk. Opening it reads the
// headers once and remembers where each regular file's data starts, so
// every file can later be read (and read again) with a SectionReader
// straight from the tar, without extracting anything.
type tarFS struct {
	ra    io.ReaderAt
	files map[string]tarEntry
}

type tarEntry struct {
	offset, size int64
	mode         fs.FileMode
	mtime        time.Time
	dir          bool
}

var _ fs.FS = (*tarFS)(nil)

// countingReader knows how far into the tar the reader has gone.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// maxArchiveEntries bounds the index of an archive's names; an image
// archive holds a few files per layer.
const maxArchiveEntries = 1 << 16

// newTarFS indexes the tar in f (size bytes).
func newTarFS(f io.ReaderAt, size int64) (*tarFS, error) {
	cr := &countingReader{r: io.NewSectionReader(f, 0, size)}
	tr := tar.NewReader(cr)
	t := &tarFS{ra: f, files: map[string]tarEntry{".": {dir: true}}}
	links := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read tar: %v", ErrBadArchive, err)
		}
		if len(t.files) > maxArchiveEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrBadArchive, maxArchiveEntries)
		}
		name, err := cleanEntryName(h.Name)
		if err != nil {
			return nil, err
		}
		if _, dup := t.files[name]; dup && name != "." {
			return nil, fmt.Errorf("%w: duplicate entry %q", ErrBadArchive, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			t.files[name] = tarEntry{dir: true, mode: fs.ModeDir | 0o755, mtime: h.ModTime}
		case tar.TypeReg, tar.TypeRegA:
			t.files[name] = tarEntry{offset: cr.n, size: h.Size, mode: 0o644, mtime: h.ModTime}
		case tar.TypeSymlink:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			links[name] = target
		case tar.TypeLink:
			links[name] = h.Linkname
		default:
			// Other entry kinds never hold image data; skip them.
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			// Make sure the data is really there: a truncated archive must
			// fail here, not halfway through an ingest.
			if n, err := io.Copy(io.Discard, tr); err != nil || n != h.Size {
				return nil, fmt.Errorf("%w: %s: truncated (%d of %d bytes): %v", ErrBadArchive, name, n, h.Size, err)
			}
		}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := t.files[d]; !ok {
				t.files[d] = tarEntry{dir: true, mode: fs.ModeDir | 0o755}
			}
		}
	}
	// Resolve links (legacy docker save links duplicate layers to the
	// first copy) to the entries they name, which must be in the archive.
	for name, target := range links {
		seen := 0
		for {
			target = path.Clean(strings.TrimPrefix(target, "/"))
			if next, ok := links[target]; ok && seen < 16 {
				target, seen = next, seen+1
				continue
			}
			break
		}
		e, ok := t.files[target]
		if !ok || strings.HasPrefix(target, "../") || target == ".." {
			return nil, fmt.Errorf("%w: link %q points outside the archive (%q)", ErrBadArchive, name, target)
		}
		t.files[name] = e
	}
	return t, nil
}

// cleanEntryName rejects names that leave the archive.
func cleanEntryName(name string) (string, error) {
	n := strings.TrimSuffix(name, "/")
	n = strings.TrimPrefix(n, "./")
	if n == "" || n == "." {
		return ".", nil
	}
	if path.IsAbs(n) {
		return "", fmt.Errorf("%w: absolute path %q", ErrBadArchive, name)
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: path %q escapes the archive", ErrBadArchive, name)
	}
	return c, nil
}

// Open implements fs.FS.
func (t *tarFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	e, ok := t.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &tarFile{name: name, e: e, SectionReader: io.NewSectionReader(t.ra, e.offset, e.size)}, nil
}

type tarFile struct {
	*io.SectionReader
	name string
	e    tarEntry
}

func (f *tarFile) Stat() (fs.FileInfo, error) { return tarInfo{f}, nil }
func (f *tarFile) Close() error               { return nil }

type tarInfo struct{ f *tarFile }

func (i tarInfo) Name() string       { return path.Base(i.f.name) }
func (i tarInfo) Size() int64        { return i.f.e.size }
func (i tarInfo) Mode() fs.FileMode  { return i.f.e.mode }
func (i tarInfo) ModTime() time.Time { return i.f.e.mtime }
func (i tarInfo) IsDir() bool        { return i.f.e.dir }
func (i tarInfo) Sys() any           { return nil }

// openFS opens an archive on disk: a tar file (docker-archive or OCI
// archive) or a directory (OCI layout, or an unpacked docker-archive).
func openFS(p string) (fs.FS, io.Closer, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return os.DirFS(p), io.NopCloser(nil), nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	t, err := newTarFS(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return t, f, nil
}
