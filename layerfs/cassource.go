package layerfs

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
)

// CASLayers hands out the layers of one cas.Store as Sources. It keeps one
// CASSource per diff_id, so a layer's file index is read from the store once
// however many images and mounts use it, and it remembers, per content
// digest, whether the object file was found intact (see CASSource.Open).
//
// The IDs of its sources name the layer and this CASLayers: the merged-view
// cache holds the sources it was built from, and a view built on a store
// that has since been closed (a restarted daemon in the same process, or a
// second store holding the same layer) must never be reused.
type CASLayers struct {
	store  *cas.Store
	seq    uint64
	logger *log.Logger

	mu       sync.Mutex
	layers   map[digest.Digest]*CASSource
	verdicts map[digest.Digest]*verdict
}

// verdict is the outcome of checking one object file, computed once.
type verdict struct {
	done chan struct{}
	err  error
}

var casSeq atomic.Uint64

// NewCASLayers serves the layers of store. logger (may be nil) receives a
// line for every object file that fails its digest check.
func NewCASLayers(store *cas.Store, logger *log.Logger) *CASLayers {
	return &CASLayers{
		store:    store,
		seq:      casSeq.Add(1),
		logger:   logger,
		layers:   map[digest.Digest]*CASSource{},
		verdicts: map[digest.Digest]*verdict{},
	}
}

// Layer returns the source of the layer diffID, the same one for every call.
// It does not read the store; Entries does, once.
func (c *CASLayers) Layer(diffID digest.Digest) *CASSource {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.layers[diffID]
	if !ok {
		s = &CASSource{layers: c, diffID: diffID, id: fmt.Sprintf("cas:%s@%d", diffID, c.seq)}
		c.layers[diffID] = s
	}
	return s
}

// Chain returns the sources of an image's layers, given as the image
// config lists them (rootfs.diff_ids, base first), in the order Mount
// takes them (top first).
func (c *CASLayers) Chain(diffIDs []digest.Digest) []Source {
	out := make([]Source, len(diffIDs))
	for i, d := range diffIDs {
		out[len(diffIDs)-1-i] = c.Layer(d)
	}
	return out
}

// Forget drops the source of diffID (its loaded file index), for a caller
// that deleted the layer. Mounts and merged views that use it keep it.
func (c *CASLayers) Forget(diffID digest.Digest) {
	c.mu.Lock()
	delete(c.layers, diffID)
	c.mu.Unlock()
}

// NewCASSource returns a source for one layer of store, with a verdict
// cache of its own. Callers that mount many layers of one store should use
// a CASLayers, which shares file indexes and verdicts between them.
func NewCASSource(store *cas.Store, diffID digest.Digest) *CASSource {
	return NewCASLayers(store, nil).Layer(diffID)
}

// CASSource is a layer of a cas.Store: its entries are the layer's file
// index, read once and kept (about 200 bytes per entry), and its contents
// are the store's object files, opened read-only so that the kernel can
// read them directly (FUSE passthrough), or the inline bytes for small
// files.
type CASSource struct {
	layers *CASLayers
	diffID digest.Digest
	id     string

	mu      sync.Mutex
	entries []cas.Entry // nil until loaded
}

var _ Source = (*CASSource)(nil)

// ID implements Source: the diff_id, qualified by the CASLayers it belongs
// to.
func (s *CASSource) ID() string { return s.id }

// DiffID is the layer's diff_id.
func (s *CASSource) DiffID() digest.Digest { return s.diffID }

// Entries implements Source. The file index is read from the store on the
// first call and the same slice is returned afterwards: the merged view
// only reads it, so every chain that holds this layer shares one copy.
func (s *CASSource) Entries(ctx context.Context) ([]cas.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries != nil {
		return s.entries, nil
	}
	es, err := s.layers.store.Entries(ctx, s.diffID)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", s.diffID, err)
	}
	for i := range es {
		es[i].Path = cleanEntryPath(es[i].Path)
	}
	if es == nil {
		es = []cas.Entry{}
	}
	s.entries = es
	return es, nil
}

var emptyDigest = digest.SHA256.FromBytes(nil)

// Open implements Source. An object file is checked against its digest
// the first time any layer of the store opens it, and the verdict is kept
// for the life of the CASLayers: a corrupt file fails with
// cas.ErrDigestMismatch (EIO to the reader) every time, and never serves
// wrong bytes. The check reads the whole file once, at sha256 speed
// (about 1-2 GB/s a core here), on the first open only; later opens cost
// one open(2). Inline contents are small and checked on every open.
func (s *CASSource) Open(ctx context.Context, e *cas.Entry) (Content, error) {
	if e.Type != cas.TypeRegular {
		return Content{}, fmt.Errorf("open %s: %w", e.Path, ErrNotRegular)
	}
	if e.Size == 0 && (e.Digest == "" || e.Digest == emptyDigest) {
		return Content{Data: []byte{}}, nil
	}
	st := s.layers.store
	if e.Inline {
		b, err := st.ReadInline(ctx, e.Digest)
		if err != nil {
			return Content{}, fmt.Errorf("open %s: %w", e.Path, err)
		}
		if digest.SHA256.FromBytes(b) != e.Digest || int64(len(b)) != e.Size {
			err := fmt.Errorf("open %s: inline object %s: %w", e.Path, e.Digest, cas.ErrDigestMismatch)
			s.layers.logf("layerfs: %v", err)
			return Content{}, err
		}
		return Content{Data: b}, nil
	}
	p, ok := st.ObjectPath(e.Digest)
	if !ok {
		return Content{}, fmt.Errorf("open %s: object %s: %w", e.Path, e.Digest, os.ErrNotExist)
	}
	f, err := openFile(p, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return Content{}, fmt.Errorf("open %s: %w", e.Path, err)
	}
	if err := s.layers.verify(e, f); err != nil {
		f.Close()
		return Content{}, fmt.Errorf("open %s: %w", e.Path, err)
	}
	return Content{File: f}, nil
}

// verify checks f (the object file of e) once per digest; concurrent first
// opens wait for one check.
func (c *CASLayers) verify(e *cas.Entry, f *os.File) error {
	c.mu.Lock()
	v, ok := c.verdicts[e.Digest]
	if !ok {
		v = &verdict{done: make(chan struct{})}
		c.verdicts[e.Digest] = v
	}
	c.mu.Unlock()
	if !ok {
		v.err = checkObject(e, f)
		if v.err != nil {
			c.logf("layerfs: %v", v.err)
		}
		if v.err != nil && !errors.Is(v.err, cas.ErrDigestMismatch) {
			// An I/O error is not a verdict: try again next time.
			c.mu.Lock()
			delete(c.verdicts, e.Digest)
			c.mu.Unlock()
		}
		close(v.done)
	}
	// Not abandoned when ctx is done: a FUSE request's context is
	// cancelled by any signal to the reader (Go's preemption signals
	// included), and the check is bounded by the file's size anyway.
	<-v.done
	return v.err
}

// checkBuf is the size of checkObject's reads: io.Copy's 32 KiB took
// 32,768 preads for a 1 GiB object.
const checkBuf = 1 << 20

// checkObject hashes the file from offset 0 with pread, leaving f's offset
// alone for the caller.
//
// An object served through passthrough (passthroughMin and up) is first
// dropped from the page cache (its clean pages; POSIX_FADV_DONTNEED), so
// the check reads what is on the disk, not what the store's writer left
// in memory, and the pages it brings in are the ones later reads use. That
// matters for speed as well: the writer left small folios (a store writes
// in small chunks), and a warm 1 MiB read of a 1 GiB object made of 4 KiB
// writes ran at half the speed of one read back through readahead (4.3
// against 8.9 GB/s here). The check runs once per object and process, and
// hashing, not the disk, bounds it.
func checkObject(e *cas.Entry, f *os.File) error {
	if e.Size >= passthroughMin {
		// Advice only: a failure leaves the pages where they were.
		_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	h := sha256.New()
	buf := make([]byte, min(checkBuf, max(e.Size, 1)))
	n, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, 1<<62), buf)
	if err != nil {
		return fmt.Errorf("check object %s: %w", e.Digest, err)
	}
	got := digest.NewDigest(digest.SHA256, h)
	if got != e.Digest || n != e.Size {
		return fmt.Errorf("object %s (%d bytes) has digest %s (%d bytes): %w", e.Digest, e.Size, got, n, cas.ErrDigestMismatch)
	}
	return nil
}

func (c *CASLayers) logf(format string, args ...any) {
	if c.logger != nil {
		c.logger.Printf(format, args...)
	}
}
