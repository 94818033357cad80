package cas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
)

// encodeEntries serializes a file index: JSON, zstd-compressed.
func encodeEntries(es []Entry) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	if err := json.NewEncoder(zw).Encode(es); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeEntries(b []byte) ([]Entry, error) {
	zr, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var es []Entry
	if err := json.NewDecoder(zr).Decode(&es); err != nil {
		return nil, fmt.Errorf("file index: %w", err)
	}
	return es, nil
}

func (s *Store) layerRecord(txn *badger.Txn, diffID digest.Digest) (layerRecord, error) {
	b, err := getValue(txn, layerKey(diffID))
	if err != nil {
		return layerRecord{}, fmt.Errorf("layer %s: %w", diffID, err)
	}
	return decodeLayerRecord(b)
}

// Layer describes a stored layer; ErrNotFound when absent.
func (s *Store) Layer(ctx context.Context, diffID digest.Digest) (LayerInfo, error) {
	var rec layerRecord
	err := s.db.View(func(txn *badger.Txn) (err error) {
		rec, err = s.layerRecord(txn, diffID)
		return err
	})
	if err != nil {
		return LayerInfo{}, err
	}
	return rec.info(), nil
}

// Layers lists every stored layer.
func (s *Store) Layers(ctx context.Context) ([]LayerInfo, error) {
	var out []LayerInfo
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte{kindLayer}, true, func(_, v []byte) error {
			rec, err := decodeLayerRecord(v)
			if err != nil {
				return err
			}
			out = append(out, rec.info())
			return nil
		})
	})
	return out, err
}

// readChunks concatenates the pieces of one stream of a layer.
func readChunks(txn *badger.Txn, rec layerRecord, part byte) ([]byte, error) {
	id, err := parseChunkID(rec.Chunks)
	if err != nil {
		return nil, err
	}
	n := rec.EntryChunks
	if part == partSplit {
		n = rec.SplitChunks
	}
	var out []byte
	for i := range n {
		b, err := getValue(txn, chunkKey(id, part, i))
		if err != nil {
			return nil, fmt.Errorf("layer %s: piece %c%d: %w", rec.DiffID, part, i, err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// Entries returns a layer's file index in tar order.
func (s *Store) Entries(ctx context.Context, diffID digest.Digest) ([]Entry, error) {
	var b []byte
	err := s.db.View(func(txn *badger.Txn) error {
		rec, err := s.layerRecord(txn, diffID)
		if err != nil {
			return err
		}
		b, err = readChunks(txn, rec, partEntries)
		return err
	})
	if err != nil {
		return nil, err
	}
	return decodeEntries(b)
}

// LayerTar streams the layer's original uncompressed tar, byte for byte,
// rebuilt from the tar-split data and the stored contents. The tar is never
// held in memory: it is produced into a pipe as the caller reads.
func (s *Store) LayerTar(ctx context.Context, diffID digest.Digest) (io.ReadCloser, error) {
	var split []byte
	var entries []Entry
	err := s.db.View(func(txn *badger.Txn) error {
		rec, err := s.layerRecord(txn, diffID)
		if err != nil {
			return err
		}
		if split, err = readChunks(txn, rec, partSplit); err != nil {
			return err
		}
		b, err := readChunks(txn, rec, partEntries)
		if err != nil {
			return err
		}
		entries, err = decodeEntries(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	files := map[string]Entry{}
	for _, e := range entries {
		if e.Type == TypeRegular {
			files[e.Path] = e
		}
	}
	zr, err := zstd.NewReader(bytes.NewReader(split), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	getter := fileGetter(func(name string) (io.ReadCloser, error) {
		p, err := cleanName(name)
		if err != nil {
			return nil, err
		}
		e, ok := files[p]
		if !ok {
			// A header-only entry with a size field (a hard link written
			// that way): tar-split recorded no bytes for it.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return s.OpenContent(ctx, e.Digest)
	})
	pr, pw := io.Pipe()
	go func() {
		defer zr.Close()
		err := asm.WriteOutputTarStream(getter, storage.NewJSONUnpacker(zr), pw)
		if err != nil {
			err = fmt.Errorf("rebuild layer %s: %w", diffID, err)
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

type fileGetter func(name string) (io.ReadCloser, error)

func (f fileGetter) Get(name string) (io.ReadCloser, error) { return f(name) }

var _ storage.FileGetter = fileGetter(nil)

// Object describes one stored content.
type Object struct {
	Digest digest.Digest
	Size   int64
	// Refs counts the layers whose index names this content.
	Refs   int64
	Inline bool
}

// Object describes a stored content; ErrNotFound when absent.
func (s *Store) Object(ctx context.Context, d digest.Digest) (Object, error) {
	var ov objectValue
	err := s.db.View(func(txn *badger.Txn) error {
		b, err := getValue(txn, objectKey(d))
		if err != nil {
			return err
		}
		ov, err = decodeObjectValue(b)
		return err
	})
	if err != nil {
		return Object{}, fmt.Errorf("object %s: %w", d, err)
	}
	return Object{Digest: d, Size: ov.Size, Refs: ov.Refs, Inline: ov.Inline}, nil
}

// ObjectPath is the file holding content d, for callers that need a file
// descriptor (FUSE passthrough, splice, reflink). It is false when the
// content is inline (read it with ReadInline) or not stored. The file is
// read-only by contract: never write to it.
func (s *Store) ObjectPath(d digest.Digest) (string, bool) {
	o, err := s.Object(context.Background(), d)
	if err != nil || o.Inline {
		return "", false
	}
	return s.objectFile(d), true
}

// ReadInline returns the bytes of an inline content; ErrNotFound when d is
// not stored inline.
func (s *Store) ReadInline(ctx context.Context, d digest.Digest) ([]byte, error) {
	var b []byte
	err := s.db.View(func(txn *badger.Txn) (err error) {
		b, err = getValue(txn, inlineKey(d))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("inline object %s: %w", d, err)
	}
	return b, nil
}

// OpenContent opens a stored content, inline or not; ErrNotFound when d
// is not stored. The empty content is always there.
func (s *Store) OpenContent(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	if d == digest.SHA256.FromBytes(nil) {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	var inline []byte
	var isInline bool
	err := s.db.View(func(txn *badger.Txn) error {
		b, err := getValue(txn, objectKey(d))
		if err != nil {
			return err
		}
		ov, err := decodeObjectValue(b)
		if err != nil || !ov.Inline {
			return err
		}
		isInline = true
		inline, err = getValue(txn, inlineKey(d))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", d, err)
	}
	if isInline {
		return io.NopCloser(bytes.NewReader(inline)), nil
	}
	f, err := os.Open(s.objectFile(d))
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", d, err)
	}
	return f, nil
}

// Lease holds layers against garbage collection between their ingest and
// the PutImage that references them (or the end of a failed load).
//
//	lease := store.NewLease()
//	defer lease.Release(ctx)
//	for each layer: store.IngestLayer(ctx, r, cas.IngestOptions{Lease: lease})
//	store.PutImage(ctx, rec)
//
// Leases live in memory only: after a crash, Open collects the layers no
// image references.
type Lease struct {
	s      *Store
	mu     sync.Mutex
	layers []digest.Digest
}

// NewLease starts an empty lease.
func (s *Store) NewLease() *Lease { return &Lease{s: s} }

// Hold adds an already stored layer to the lease.
func (l *Lease) Hold(diffID digest.Digest) { l.add(diffID) }

func (l *Lease) add(d digest.Digest) {
	l.s.holdLayer(d)
	l.mu.Lock()
	l.layers = append(l.layers, d)
	l.mu.Unlock()
}

// Release ends the lease and removes the layers it held that no image
// references (and their contents no other layer names). It may be called
// more than once.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	ds := l.layers
	l.layers = nil
	l.mu.Unlock()
	for _, d := range ds {
		l.s.releaseLayer(d)
	}
	return l.s.collectLayers(ctx, ds)
}

// dropChunks deletes the pieces of rec's ingest.
func (s *Store) dropChunks(ctx context.Context, rec layerRecord) error {
	id, err := parseChunkID(rec.Chunks)
	if err != nil {
		return err
	}
	var keys [][]byte
	for i := range rec.EntryChunks {
		keys = append(keys, chunkKey(id, partEntries, i))
	}
	for i := range rec.SplitChunks {
		keys = append(keys, chunkKey(id, partSplit, i))
	}
	return s.deleteKeys(ctx, keys)
}

// collectLayers removes each layer of ds that no image references and
// nothing holds, then the contents that no layer names any more.
func (s *Store) collectLayers(ctx context.Context, ds []digest.Digest) error {
	ctx = context.WithoutCancel(ctx) // half a collection is worse than a late one
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	done := map[digest.Digest]bool{}
	for _, d := range ds {
		if done[d] || s.layerHolds[d] > 0 {
			continue
		}
		done[d] = true
		if err := s.removeLayer(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("remove layer %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// removeLayer deletes one unreferenced layer. Callers hold s.mu.
func (s *Store) removeLayer(ctx context.Context, diffID digest.Digest) error {
	var rec layerRecord
	var entries []Entry
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if rec, err = s.layerRecord(txn, diffID); err != nil {
			return err
		}
		b, err := readChunks(txn, rec, partEntries)
		if err != nil {
			return err
		}
		entries, err = decodeEntries(b)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.Refs > 0 {
		return nil
	}
	objs := map[digest.Digest]bool{}
	for _, e := range entries {
		if e.Type == TypeRegular {
			objs[e.Digest] = true
		}
	}
	id, err := parseChunkID(rec.Chunks)
	if err != nil {
		return err
	}
	// The record goes first, with a pending marker that tells Open to
	// recount the objects should the process die halfway.
	err = s.update(ctx, func(txn *badger.Txn) error {
		cur, err := s.layerRecord(txn, diffID)
		if err != nil {
			return err
		}
		if cur.Refs > 0 || cur.Chunks != rec.Chunks {
			return errKeep
		}
		if err := txn.Delete(layerKey(diffID)); err != nil {
			return err
		}
		return txn.Set(pendingKey(id), []byte(diffID))
	})
	if errors.Is(err, errKeep) || errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	vals := make(map[digest.Digest]objectValue, len(objs))
	for d := range objs {
		vals[d] = objectValue{}
	}
	gone, _, err := s.adjustRefs(ctx, vals, -1)
	if err != nil {
		return err
	}
	if err := errors.Join(s.dropChunks(ctx, rec), s.removeUnreferenced(ctx, gone)); err != nil {
		return err
	}
	return s.deleteKeys(ctx, [][]byte{pendingKey(id)})
}

// GC removes every layer that no image references and no lease holds, and
// every content no layer names. Open runs it; callers may run it after
// removing images in bulk.
func (s *Store) GC(ctx context.Context) error {
	var zero []digest.Digest
	var orphans []digest.Digest
	err := s.db.View(func(txn *badger.Txn) error {
		if err := scan(txn, []byte{kindLayer}, true, func(_, v []byte) error {
			rec, err := decodeLayerRecord(v)
			if err != nil {
				return err
			}
			if rec.Refs <= 0 {
				zero = append(zero, rec.DiffID)
			}
			return nil
		}); err != nil {
			return err
		}
		return scan(txn, []byte{kindObject}, true, func(k, v []byte) error {
			_, d, err := parseDigestKey(k)
			if err != nil {
				return err
			}
			ov, err := decodeObjectValue(v)
			if err != nil {
				return err
			}
			if ov.Refs <= 0 {
				orphans = append(orphans, d)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if err := s.collectLayers(ctx, zero); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if len(orphans) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var dead [][]byte
	for _, d := range orphans {
		if s.objHolds[d] == 0 {
			dead = append(dead, objectKey(d))
		}
	}
	if err := s.deleteKeys(ctx, dead); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	return s.removeUnreferenced(ctx, orphans)
}
