package cas

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
	"golang.org/x/sys/unix"
)

// IngestOptions tunes one IngestLayer call. The zero value is valid.
type IngestOptions struct {
	// Digest, when set, is the expected digest of the stream as given
	// (the compressed digest of a registry or OCI layout).
	Digest digest.Digest
	// DiffID, when set, is the expected digest of the uncompressed tar.
	DiffID digest.Digest
	// MaxSize bounds the uncompressed size; 0 means the store's limit
	// (WithMaxLayerSize, default DefaultMaxLayerSize).
	MaxSize int64
	// Progress, when set, is called now and then (every MiB and at the
	// end) with the number of bytes of the stream as given read so far,
	// from one of the ingest's goroutines, never two calls at once.
	Progress func(read int64)
	// Lease, when set, holds the layer after the ingest so that no garbage
	// collection removes it before an image references it (PutImage).
	// Without a lease a layer no image references is collected by the next
	// GC or Open.
	Lease *Lease
	// Files, when set, may offer the bytes of a regular-file entry (by
	// its cleaned path and size) as an open file, which the store tries to
	// reflink (FICLONE) into its object instead of writing the bytes again:
	// a commit of a container's upper dir then costs no second copy on
	// file systems that share extents (XFS, Btrfs). The store closes the
	// file. It still hashes the bytes the tar carries and checks that the
	// clone holds the same bytes, so a wrong or changing file is
	// ErrDigestMismatch, never a corrupt object; where cloning is not
	// possible the bytes are written as usual.
	Files func(path string, size int64) *os.File
	// Adopt lets the store take an offered file's inode as the object
	// itself, by link(2), instead of cloning or copying its bytes: the
	// commit of a stopped container's new file then costs no second copy
	// on any file system. The store checks the file's bytes against the
	// tar's before the object is named, and marks the inode with the
	// XattrShared attribute, so that its other owner (layerfs, for a
	// container's upper dir) copies it before it writes it again (see
	// Adopted). Where the link cannot be made (another file system: EXDEV;
	// a file with other names of its own) it falls back to a reflink, then
	// a copy from the offered file. The caller must offer for adoption
	// only files that nothing has open for writing.
	Adopt bool
}

// LayerInfo describes a stored layer.
type LayerInfo struct {
	DiffID digest.Digest
	// Size is the size of the uncompressed layer tar.
	Size int64
	// ContentSize is the sum of the layer's regular file sizes: what the
	// layer adds to an image's size.
	ContentSize int64
	// Files is the number of entries in the layer's file index.
	Files int
	// Refs is the number of images that reference the layer.
	Refs int64
	// Digest and CompressedSize describe the stream IngestLayer read; they
	// are set only in IngestLayer's result.
	Digest         digest.Digest
	CompressedSize int64
	// Existed is true when IngestLayer found the layer already stored.
	Existed bool
}

// layerRecord is the value under layerKey, JSON-encoded.
type layerRecord struct {
	DiffID      digest.Digest `json:"diff_id"`
	Size        int64         `json:"size"`
	ContentSize int64         `json:"content_size"`
	Files       int           `json:"files"`
	Refs        int64         `json:"refs"`
	// Chunks is the chunk ID (hex) of the index and tar-split pieces.
	Chunks      string `json:"chunks"`
	EntryChunks uint32 `json:"entry_chunks"`
	SplitChunks uint32 `json:"split_chunks"`
}

func decodeLayerRecord(b []byte) (layerRecord, error) {
	var r layerRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("layer record: %w", err)
	}
	return r, nil
}

func (r layerRecord) info() LayerInfo {
	return LayerInfo{DiffID: r.DiffID, Size: r.Size, ContentSize: r.ContentSize, Files: r.Files, Refs: r.Refs}
}

// IngestLayer reads a layer (a tar, plain, gzip or zstd: detected by its
// magic number) in one pass. It checks the stream's digest and the tar's
// diff_id against opts, rejects anything unsafe (see ErrInvalidLayer),
// writes every regular file's bytes once (content already stored by any
// layer is not written again), and commits the layer's file index and
// tar-split data in one transaction. On any error the store is as it was.
//
// A layer already stored (same diff_id) is success: the result has Existed
// set and the existing layer's counts.
func (s *Store) IngestLayer(ctx context.Context, r io.Reader, opts IngestOptions) (LayerInfo, error) {
	in := &ingest{s: s, opts: opts, seen: map[string]EntryType{}, opaque: map[string]bool{}, implied: map[string]bool{}, inline: map[digest.Digest][]byte{}, heldSet: map[digest.Digest]bool{}}
	if in.opts.MaxSize <= 0 {
		in.opts.MaxSize = s.maxLayerSize
	}
	info, err := in.run(ctx, r)
	// The ingest's holds on objects end here: committed objects are
	// referenced by the layer record, the others are removed.
	s.releaseObjects(in.held)
	if err != nil {
		s.mu.Lock()
		cerr := s.removeUnreferenced(context.WithoutCancel(ctx), in.created)
		s.mu.Unlock()
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
		return LayerInfo{}, fmt.Errorf("ingest layer: %w", err)
	}
	return info, nil
}

type ingest struct {
	s    *Store
	opts IngestOptions

	entries []Entry
	seen    map[string]EntryType // path → type of the non-opaque entry
	opaque  map[string]bool
	implied map[string]bool // directories that earlier entries lie in
	content int64

	held    []digest.Digest // objects this ingest holds
	created []digest.Digest // objects this ingest wrote (file or inline)
	// inline content waiting to be written, and its total size.
	inline     map[digest.Digest][]byte
	inlineSize int
	heldSet    map[digest.Digest]bool
	files      bool // the layer has contents in object files
}

// countingReader counts bytes, reports progress and checks ctx.
type countingReader struct {
	ctx      context.Context
	r        io.Reader
	n        int64
	limit    int64 // 0: none
	progress func(int64)
	nextTick int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.limit > 0 && c.n > c.limit {
		return n, fmt.Errorf("more than %d bytes uncompressed: %w", c.limit, ErrTooLarge)
	}
	if c.progress != nil && (c.n >= c.nextTick || err == io.EOF) {
		c.progress(c.n)
		c.nextTick = c.n + 1<<20
	}
	return n, err
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

func (in *ingest) run(ctx context.Context, r io.Reader) (LayerInfo, error) {
	rawHash := sha256.New()
	raw := &countingReader{ctx: ctx, r: io.TeeReader(r, rawHash), progress: in.opts.Progress}
	br := bufio.NewReaderSize(raw, 1<<20)
	magic, _ := br.Peek(4)
	var dec io.Reader = br
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return LayerInfo{}, fmt.Errorf("gzip: %w: %w", ErrInvalidLayer, err)
		}
		defer gz.Close()
		dec = gz
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return LayerInfo{}, fmt.Errorf("zstd: %w: %w", ErrInvalidLayer, err)
		}
		defer zr.Close()
		dec = zr
	}
	diffHash := sha256.New()
	plain := &countingReader{ctx: ctx, r: dec, limit: in.opts.MaxSize}

	var split bytes.Buffer
	zw, err := zstd.NewWriter(&split, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return LayerInfo{}, err
	}
	ts, done, err := asm.NewInputTarStreamWithDone(io.TeeReader(plain, diffHash), storage.NewJSONPacker(zw), nil)
	if err != nil {
		return LayerInfo{}, err
	}
	err = in.readTar(ctx, ts)
	if err == nil {
		// Past the end-of-archive blocks: whatever padding follows is part
		// of the diff_id and of the tar-split data.
		_, err = io.Copy(io.Discard, ts)
	}
	ts.Close()
	if derr := <-done; err == nil && derr != nil {
		err = derr
	}
	if err != nil {
		return LayerInfo{}, classify(err)
	}
	if err := zw.Close(); err != nil {
		return LayerInfo{}, err
	}
	// The rest of the stream as given (a compressor's trailer) is part of
	// its digest.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return LayerInfo{}, classify(err)
	}
	info := LayerInfo{
		Digest:         digest.NewDigest(digest.SHA256, rawHash),
		CompressedSize: raw.n,
		DiffID:         digest.NewDigest(digest.SHA256, diffHash),
		Size:           plain.n,
		ContentSize:    in.content,
		Files:          len(in.entries),
	}
	if in.opts.Digest != "" && in.opts.Digest != info.Digest {
		return LayerInfo{}, fmt.Errorf("stream digest is %s, expected %s: %w", info.Digest, in.opts.Digest, ErrDigestMismatch)
	}
	if in.opts.DiffID != "" && in.opts.DiffID != info.DiffID {
		return LayerInfo{}, fmt.Errorf("diff_id is %s, expected %s: %w", info.DiffID, in.opts.DiffID, ErrDigestMismatch)
	}
	if err := in.flushInline(ctx); err != nil {
		return LayerInfo{}, err
	}
	if in.files {
		if err := in.s.syncObjects(); err != nil {
			return LayerInfo{}, err
		}
	}
	return in.commit(ctx, info, split.Bytes())
}

// classify turns what a broken stream looks like into ErrInvalidLayer,
// keeping the errors that already say what they are.
func classify(err error) error {
	switch {
	case errors.Is(err, ErrInvalidLayer), errors.Is(err, ErrTooLarge), errors.Is(err, ErrDigestMismatch),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, storage.ErrDuplicatePath):
		return fmt.Errorf("duplicate entry: %w", ErrInvalidLayer)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("truncated stream: %w", ErrInvalidLayer)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidLayer, err)
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, a...), ErrInvalidLayer)
}

// cleanName validates a tar entry name and returns it cleaned: relative,
// slash-separated, without "..", the root being ".".
func cleanName(name string) (string, error) {
	if name == "" {
		return "", invalid("entry with an empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", invalid("absolute entry name %q", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", invalid("entry name %q climbs out of the layer", name)
		}
	}
	if strings.ContainsRune(name, 0) {
		return "", invalid("entry name %q holds a NUL byte", name)
	}
	return path.Clean(name), nil
}

func (in *ingest) readTar(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	buf := make([]byte, 1<<20)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := in.add(ctx, hdr, tr, buf); err != nil {
			return err
		}
	}
}

// add checks one header and turns it into an index entry, storing its
// content.
func (in *ingest) add(ctx context.Context, hdr *tar.Header, tr io.Reader, buf []byte) error {
	p, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	e := Entry{
		Path:     p,
		Mode:     uint32(hdr.Mode) & 0o7777,
		UID:      uint32(hdr.Uid),
		GID:      uint32(hdr.Gid),
		ModTime:  hdr.ModTime,
		Devmajor: uint32(hdr.Devmajor),
		Devminor: uint32(hdr.Devminor),
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if e.Xattrs == nil {
				e.Xattrs = map[string][]byte{}
			}
			e.Xattrs[name] = []byte(v)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		e.Type = TypeRegular
	case tar.TypeDir:
		e.Type = TypeDir
	case tar.TypeSymlink:
		e.Type = TypeSymlink
	case tar.TypeLink:
		e.Type = TypeHardlink
	case tar.TypeChar:
		e.Type = TypeChar
	case tar.TypeBlock:
		e.Type = TypeBlock
	case tar.TypeFifo:
		e.Type = TypeFifo
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return invalid("entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
	}
	if e.Type != TypeRegular && e.Type != TypeHardlink && hdr.Size != 0 {
		return invalid("entry %q: %s with %d bytes of content", hdr.Name, e.Type, hdr.Size)
	}

	// Whiteouts become entries of their own at the path they hide.
	dir, base := path.Dir(p), path.Base(p)
	if rest, ok := strings.CutPrefix(base, ".wh."); ok {
		if hdr.Size != 0 {
			return invalid("whiteout %q has content", hdr.Name)
		}
		switch {
		case rest == ".wh..opq":
			e.Type, e.Path = TypeOpaque, dir
		case strings.HasPrefix(rest, ".wh."):
			// aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): kept in the
			// tar-split data, not an entry of the file system.
			return nil
		case rest == "" || rest == "." || rest == "..":
			return invalid("whiteout %q names nothing", hdr.Name)
		default:
			e.Type, e.Path = TypeWhiteout, path.Join(dir, rest)
		}
	}

	// Nothing may sit below a non-directory of the same layer: a path
	// below a symlink would be written through it, outside the layer.
	for d := path.Dir(e.Path); d != "." && d != "/"; d = path.Dir(d) {
		if t, ok := in.seen[d]; ok && t != TypeDir {
			return invalid("entry %q lies below %s %q", hdr.Name, t, d)
		}
	}
	if e.Type != TypeDir && e.Type != TypeOpaque && in.implied[e.Path] {
		return invalid("%s %q is the directory of earlier entries", e.Type, hdr.Name)
	}
	if e.Type == TypeOpaque {
		if in.opaque[e.Path] {
			return invalid("duplicate opaque marker %q", hdr.Name)
		}
		in.opaque[e.Path] = true
	} else {
		if _, dup := in.seen[e.Path]; dup {
			return invalid("duplicate entry %q", e.Path)
		}
		if e.Path == "." && e.Type != TypeDir {
			return invalid("layer root is a %s", e.Type)
		}
	}

	switch e.Type {
	case TypeSymlink:
		e.Linkname = hdr.Linkname
		if hdr.Linkname == "" {
			return invalid("symlink %q has no target", hdr.Name)
		}
		if !path.IsAbs(hdr.Linkname) {
			if j := path.Join(path.Dir(e.Path), hdr.Linkname); j == ".." || strings.HasPrefix(j, "../") {
				return invalid("symlink %q → %q points outside the layer", hdr.Name, hdr.Linkname)
			}
		}
	case TypeHardlink:
		t, err := cleanName(hdr.Linkname)
		if err != nil {
			return invalid("hardlink %q → %q points outside the layer", hdr.Name, hdr.Linkname)
		}
		if tt, ok := in.seen[t]; !ok || tt == TypeDir || tt == TypeWhiteout {
			return invalid("hardlink %q → %q: target is not an earlier file of the layer", hdr.Name, hdr.Linkname)
		}
		e.Linkname = t
	case TypeRegular:
		e.Size = hdr.Size
		d, inline, err := in.store(ctx, tr, e.Path, hdr.Size, buf)
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		e.Digest, e.Inline = d, inline
		in.content += hdr.Size
	}
	if e.Type != TypeOpaque {
		in.seen[e.Path] = e.Type
	}
	for d := path.Dir(e.Path); d != "." && d != "/" && !in.implied[d]; d = path.Dir(d) {
		in.implied[d] = true
	}
	in.entries = append(in.entries, e)
	return nil
}

// store writes one file's content, size bytes from r, and holds it.
func (in *ingest) store(ctx context.Context, r io.Reader, name string, size int64, buf []byte) (digest.Digest, bool, error) {
	s := in.s
	if size <= s.inlineThreshold {
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return "", false, err
		}
		d := digest.FromBytes(data)
		if _, ok := in.inline[d]; !ok && !in.holds(d) {
			in.hold(d)
			in.inline[d] = data
			in.inlineSize += len(data) + 100
			if in.inlineSize > chunkSize {
				if err := in.flushInline(ctx); err != nil {
					return "", false, err
				}
			}
		}
		return d, true, nil
	}
	f, err := os.CreateTemp(s.path("tmp"), "object-")
	if err != nil {
		return "", false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if in.opts.Files != nil && in.opts.Adopt {
		f.Close()
		return in.adopted(r, name, size, buf)
	}
	if in.opts.Files != nil {
		if d, ok, err := in.cloned(f, r, name, size, buf); ok || err != nil {
			f.Close()
			if err != nil {
				return "", false, err
			}
			return in.place(tmp, d)
		}
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, size), buf)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, err
	}
	return in.place(tmp, digest.NewDigest(digest.SHA256, h))
}

// place moves a written temp file into place as object d and holds it.
func (in *ingest) place(tmp string, d digest.Digest) (digest.Digest, bool, error) {
	in.files = true
	if in.holds(d) {
		return d, false, nil
	}
	in.hold(d)
	if err := in.s.placeObject(tmp, d); err != nil {
		return "", false, err
	}
	in.created = append(in.created, d)
	return d, false, nil
}

// cloned fills the temp file f with a reflink of the file opts.Files
// offers for the entry, hashing the entry's bytes from the tar and the
// clone's bytes, which must match. It reports false, with nothing read
// from the tar, when there is no offer or the file system cannot clone.
func (in *ingest) cloned(f *os.File, r io.Reader, name string, size int64, buf []byte) (digest.Digest, bool, error) {
	src := in.opts.Files(name, size)
	if src == nil {
		return "", false, nil
	}
	err := unix.IoctlFileClone(int(f.Fd()), int(src.Fd()))
	src.Close()
	if err != nil {
		return "", false, nil
	}
	th := sha256.New()
	if n, err := io.CopyBuffer(th, io.LimitReader(r, size), buf); err != nil {
		return "", false, err
	} else if n != size {
		return "", false, io.ErrUnexpectedEOF
	}
	ch := sha256.New()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", false, err
	}
	n, err := io.CopyBuffer(ch, f, buf)
	if err != nil {
		return "", false, err
	}
	d := digest.NewDigest(digest.SHA256, th)
	if n != size || digest.NewDigest(digest.SHA256, ch) != d {
		return "", false, fmt.Errorf("entry %q: the offered file does not hold the tar's bytes: %w", name, ErrDigestMismatch)
	}
	if err := f.Sync(); err != nil {
		return "", false, err
	}
	return d, true, nil
}

func (in *ingest) holds(d digest.Digest) bool { return in.heldSet[d] }

func (in *ingest) hold(d digest.Digest) {
	in.s.holdObject(d)
	in.held = append(in.held, d)
	in.heldSet[d] = true
}

// placeObject renames a written temp file into place (rename is atomic).
// An object already present is left alone: its bytes are the same by
// definition. Nothing is synced here: syncObjects makes every object file
// and name durable at once before the metadata naming them commits, one
// syncfs instead of two fsyncs per file.
func (s *Store) placeObject(tmp string, d digest.Digest) error {
	dst := s.objectFile(d)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// syncObjects flushes the file system holding the objects: contents, inodes
// and directory entries. An object another ingest wrote and this one found
// in place is covered too, so a layer never commits naming bytes that a
// crash could lose.
func (s *Store) syncObjects() error {
	f, err := os.Open(s.path("objects"))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync objects: %w", err)
	}
	return nil
}

// flushInline writes the small contents gathered so far, skipping those
// already stored (held, so they cannot go away meanwhile).
func (in *ingest) flushInline(ctx context.Context) error {
	if len(in.inline) == 0 {
		return nil
	}
	err := in.s.update(ctx, func(txn *badger.Txn) error {
		for d, data := range in.inline {
			if _, err := txn.Get(inlineKey(d)); err == nil {
				delete(in.inline, d)
				continue
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			if err := txn.Set(inlineKey(d), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for d := range in.inline {
		in.created = append(in.created, d)
	}
	clear(in.inline)
	in.inlineSize = 0
	return nil
}

var errExisted = errors.New("layer exists")

// commit stores the index and tar-split pieces, then makes the layer
// visible: its record and its objects' reference counts change in one
// transaction, so a crash leaves either nothing or the whole layer.
func (in *ingest) commit(ctx context.Context, info LayerInfo, split []byte) (LayerInfo, error) {
	s := in.s
	s.holdLayer(info.DiffID)
	defer s.releaseLayer(info.DiffID)
	if in.opts.Lease != nil {
		in.opts.Lease.add(info.DiffID)
	}
	existing := func() (LayerInfo, error) {
		li, err := s.Layer(ctx, info.DiffID)
		if err != nil {
			return LayerInfo{}, err
		}
		li.Digest, li.CompressedSize, li.Existed = info.Digest, info.CompressedSize, true
		return li, nil
	}
	if _, err := s.Layer(ctx, info.DiffID); err == nil {
		return existing()
	}

	index, err := encodeEntries(in.entries)
	if err != nil {
		return LayerInfo{}, err
	}
	var id chunkID
	if _, err := rand.Read(id[:]); err != nil {
		return LayerInfo{}, err
	}
	rec := layerRecord{
		DiffID: info.DiffID, Size: info.Size, ContentSize: info.ContentSize, Files: info.Files,
		Chunks: id.String(),
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	put := func(part byte, data []byte) (uint32, error) {
		var n uint32
		for len(data) > 0 || n == 0 {
			piece := data[:min(len(data), chunkSize)]
			data = data[len(piece):]
			if err := wb.Set(chunkKey(id, part, n), piece); err != nil {
				return 0, err
			}
			n++
		}
		return n, nil
	}
	if rec.EntryChunks, err = put(partEntries, index); err != nil {
		return LayerInfo{}, err
	}
	if rec.SplitChunks, err = put(partSplit, split); err != nil {
		return LayerInfo{}, err
	}
	if err := wb.Flush(); err != nil {
		return LayerInfo{}, err
	}
	// Undoing must finish even when ctx is what failed the commit (a pull
	// cancelled halfway): a half-undone layer leaves counted objects that
	// no layer names.
	cleanup := context.WithoutCancel(ctx)
	dropChunks := func() error {
		return s.dropChunks(cleanup, rec)
	}

	objs := map[digest.Digest]objectValue{}
	for _, e := range in.entries {
		if e.Type == TypeRegular {
			objs[e.Digest] = objectValue{Size: e.Size, Inline: e.Inline}
		}
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return LayerInfo{}, errors.Join(err, dropChunks())
	}
	// The object counts change in as many transactions as the layer
	// needs; the pending marker, written first, tells Open to recount if
	// the process dies before the layer record commits.
	if err := s.update(ctx, func(txn *badger.Txn) error {
		return txn.Set(pendingKey(id), []byte(info.DiffID))
	}); err != nil {
		return LayerInfo{}, errors.Join(err, dropChunks())
	}
	// undo takes back the counts that were added: all of them, or the
	// batches that committed before a failure.
	undo := func(added map[digest.Digest]objectValue) error {
		_, _, err := s.adjustRefs(cleanup, added, -1)
		return errors.Join(err, dropChunks(), s.deleteKeys(cleanup, [][]byte{pendingKey(id)}))
	}
	if _, added, err := s.adjustRefs(ctx, objs, +1); err != nil {
		part := make(map[digest.Digest]objectValue, len(added))
		for _, d := range added {
			part[d] = objs[d]
		}
		return LayerInfo{}, errors.Join(err, undo(part))
	}
	err = s.update(ctx, func(txn *badger.Txn) error {
		if _, err := txn.Get(layerKey(info.DiffID)); err == nil {
			return errExisted
		}
		if err := txn.Set(layerKey(info.DiffID), val); err != nil {
			return err
		}
		return txn.Delete(pendingKey(id))
	})
	if errors.Is(err, errExisted) {
		if err := undo(objs); err != nil {
			return LayerInfo{}, err
		}
		return existing()
	}
	if err != nil {
		return LayerInfo{}, errors.Join(err, undo(objs))
	}
	info.Refs = 0
	return info, nil
}

// adjustRefs adds delta to the reference count of each object, creating
// records as needed and deleting those that reach zero (gone), in
// transactions of at most s.refBatch objects. On failure, changed names the
// objects of the batches that committed, so that a caller can take back
// exactly those.
func (s *Store) adjustRefs(ctx context.Context, objs map[digest.Digest]objectValue, delta int64) (gone, changed []digest.Digest, err error) {
	ds := make([]digest.Digest, 0, len(objs))
	for d := range objs {
		ds = append(ds, d)
	}
	for len(ds) > 0 {
		batch := ds[:min(len(ds), s.refBatch)]
		ds = ds[len(batch):]
		var batchGone []digest.Digest
		err := s.update(ctx, func(txn *badger.Txn) error {
			batchGone = batchGone[:0]
			for _, d := range batch {
				ov := objs[d]
				ov.Refs = 0
				b, err := getValue(txn, objectKey(d))
				if err == nil {
					if ov, err = decodeObjectValue(b); err != nil {
						return err
					}
				} else if !errors.Is(err, ErrNotFound) {
					return err
				} else if delta < 0 {
					continue
				}
				if ov.Refs += delta; ov.Refs > 0 {
					err = txn.Set(objectKey(d), ov.encode())
				} else {
					err = txn.Delete(objectKey(d))
					batchGone = append(batchGone, d)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return gone, changed, err
		}
		gone = append(gone, batchGone...)
		changed = append(changed, batch...)
	}
	return gone, changed, nil
}
