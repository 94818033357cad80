package cas

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

// Defaults for the options.
const (
	// DefaultMaxLayerSize bounds a layer's uncompressed size: generous for
	// any real image, finite against decompression bombs.
	DefaultMaxLayerSize int64 = 64 << 30
	// DefaultInlineThreshold: files of at most this many bytes are kept in
	// Badger rather than in object files (an object file costs an inode and
	// a 4 KiB block whatever its size).
	DefaultInlineThreshold int64 = 4096
)

// chunkSize bounds one Badger value holding a piece of a layer's file index
// or tar-split data, well below Badger's transaction size limit.
const chunkSize = 1 << 20

// Store is a content-addressed store rooted at one directory:
//
//	root/db                      Badger: every record but file contents
//	root/objects/sha256/xx/<hex> file contents named by their sha256
//	root/tmp                     files being written; emptied at Open
//
// A Store is safe for concurrent use by many goroutines of one process;
// Badger lets only one process open the directory.
type Store struct {
	root            string
	db              *badger.DB
	maxLayerSize    int64
	inlineThreshold int64
	refBatch        int // objects per reference-count transaction

	// mu guards the holds and serializes every decision to delete a layer
	// or an object, so that nothing held by an ingest or a lease in flight
	// is collected.
	mu         sync.Mutex
	layerHolds map[digest.Digest]int
	objHolds   map[digest.Digest]int

	stopGC    chan struct{}
	gcDone    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Option configures Open.
type Option func(*Store)

// WithMaxLayerSize sets the largest uncompressed layer IngestLayer accepts
// when IngestOptions.MaxSize is zero.
func WithMaxLayerSize(n int64) Option { return func(s *Store) { s.maxLayerSize = n } }

// WithInlineThreshold sets the largest file kept inline in Badger; 0 keeps
// nothing inline but empty files.
func WithInlineThreshold(n int64) Option { return func(s *Store) { s.inlineThreshold = n } }

// Open opens (creating if needed) the store at root and removes what a
// crash left behind: temp files, object files and inline objects no index
// references, layer index pieces of ingests that never committed, and
// layers no image references.
func Open(ctx context.Context, root string, opts ...Option) (*Store, error) {
	s := &Store{
		root:            root,
		maxLayerSize:    DefaultMaxLayerSize,
		inlineThreshold: DefaultInlineThreshold,
		layerHolds:      map[digest.Digest]int{},
		objHolds:        map[digest.Digest]int{},
		refBatch:        10000,
	}
	for _, o := range opts {
		o(s)
	}
	for _, d := range []string{root, s.path("db"), s.path("objects", "sha256"), s.path("tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	bopts := badger.DefaultOptions(s.path("db")).
		WithLogger(nil).
		WithSyncWrites(true).
		WithBlockCacheSize(32 << 20).
		// The store holds metadata: small keys and values, file bytes live
		// in object files. Badger's 64 MiB memtables, five of them, each
		// allocated and zeroed afresh as the last one fills, kept a daemon
		// at 300-450 MiB after a few big layers; 16 MiB, two of them, hold
		// a layer's index batch (WriteBatch splits bigger ones) at a tenth
		// of the memory.
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithNumCompactors(2)
	db, err := badger.Open(bopts)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	s.db = db
	if err := s.recover(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: clean up: %w", root, err)
	}
	s.stopGC, s.gcDone = make(chan struct{}), make(chan struct{})
	go s.valueLogGC()
	return s, nil
}

// valueLogGC reclaims Badger value-log space left by deleted index pieces
// and inline contents; Badger never does it by itself.
func (s *Store) valueLogGC() {
	defer close(s.gcDone)
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stopGC:
			return
		case <-t.C:
			for s.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

// Close closes the database; later calls return the first call's result.
// Object files stay valid.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopGC)
		<-s.gcDone
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close store: %w", err)
		}
	})
	return s.closeErr
}

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// objectFile is where an object's bytes live when not inline.
func (s *Store) objectFile(d digest.Digest) string {
	h := d.Encoded()
	return s.path("objects", string(d.Algorithm()), h[:2], h)
}

// update runs fn in a read-write transaction, retrying when a concurrent
// transaction touched the same keys.
func (s *Store) update(ctx context.Context, fn func(txn *badger.Txn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) || attempt >= 50 {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
}

// getValue copies the value under key out of txn; ErrNotFound when absent.
func getValue(txn *badger.Txn, key []byte) ([]byte, error) {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return it.ValueCopy(nil)
}

// scan calls fn for each key with prefix, in key order, inside txn.
func scan(txn *badger.Txn, prefix []byte, values bool, fn func(key, val []byte) error) error {
	o := badger.DefaultIteratorOptions
	o.PrefetchValues = values
	o.Prefix = prefix
	it := txn.NewIterator(o)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		var v []byte
		if values {
			var err error
			if v, err = item.ValueCopy(nil); err != nil {
				return err
			}
		}
		if err := fn(item.KeyCopy(nil), v); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) holdObject(d digest.Digest) {
	s.mu.Lock()
	s.objHolds[d]++
	s.mu.Unlock()
}

func (s *Store) releaseObjects(ds []digest.Digest) {
	s.mu.Lock()
	for _, d := range ds {
		if s.objHolds[d]--; s.objHolds[d] <= 0 {
			delete(s.objHolds, d)
		}
	}
	s.mu.Unlock()
}

func (s *Store) holdLayer(d digest.Digest) {
	s.mu.Lock()
	s.layerHolds[d]++
	s.mu.Unlock()
}

func (s *Store) releaseLayer(d digest.Digest) {
	s.mu.Lock()
	if s.layerHolds[d]--; s.layerHolds[d] <= 0 {
		delete(s.layerHolds, d)
	}
	s.mu.Unlock()
}

// removeUnreferenced deletes the bytes of each object that has no object
// record and no hold: its file, or its inline value. Callers hold s.mu,
// which also keeps ingests from taking a new hold meanwhile.
func (s *Store) removeUnreferenced(ctx context.Context, ds []digest.Digest) error {
	var dead []digest.Digest
	err := s.db.View(func(txn *badger.Txn) error {
		for _, d := range ds {
			if s.objHolds[d] > 0 {
				continue
			}
			if _, err := txn.Get(objectKey(d)); err == nil {
				continue
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			dead = append(dead, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	keys := make([][]byte, len(dead))
	for i, d := range dead {
		keys[i] = inlineKey(d)
	}
	if err := s.deleteKeys(ctx, keys); err != nil {
		return err
	}
	var errs []error
	for _, d := range dead {
		if err := os.Remove(s.objectFile(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var errKeep = errors.New("keep")

// recover removes what an interrupted process left. Nothing is held at
// Open, so every unreferenced thing is garbage.
func (s *Store) recover(ctx context.Context) error {
	if err := os.RemoveAll(s.path("tmp")); err != nil {
		return err
	}
	if err := os.MkdirAll(s.path("tmp"), 0o700); err != nil {
		return err
	}
	if err := s.recount(ctx); err != nil {
		return err
	}
	if err := s.GC(ctx); err != nil {
		return err
	}
	// Chunks of ingests that never committed their layer record.
	live := map[chunkID]bool{}
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte{kindLayer}, true, func(_, v []byte) error {
			rec, err := decodeLayerRecord(v)
			if err != nil {
				return err
			}
			id, err := parseChunkID(rec.Chunks)
			if err != nil {
				return err
			}
			live[id] = true
			return nil
		})
	})
	if err != nil {
		return err
	}
	var dead [][]byte
	err = s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte{kindChunk}, false, func(k, _ []byte) error {
			id, _, _, err := parseChunkKey(k)
			if err != nil || !live[id] {
				dead = append(dead, k)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if err := s.deleteKeys(ctx, dead); err != nil {
		return err
	}
	// Object files and inline values without an object record.
	known := map[digest.Digest]objectValue{}
	var deadInline [][]byte
	err = s.db.View(func(txn *badger.Txn) error {
		if err := scan(txn, []byte{kindObject}, true, func(k, v []byte) error {
			_, d, err := parseDigestKey(k)
			if err != nil {
				return err
			}
			ov, err := decodeObjectValue(v)
			if err != nil {
				return err
			}
			known[d] = ov
			return nil
		}); err != nil {
			return err
		}
		return scan(txn, []byte{kindInline}, false, func(k, _ []byte) error {
			_, d, err := parseDigestKey(k)
			if err != nil || !known[d].Inline {
				deadInline = append(deadInline, k)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if err := s.deleteKeys(ctx, deadInline); err != nil {
		return err
	}
	objDir := s.path("objects")
	return filepath.WalkDir(objDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(objDir, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) == 3 {
			d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
			if ov, ok := known[d]; ok && !ov.Inline && d.Validate() == nil {
				return nil
			}
		}
		return os.Remove(p)
	})
}

// deleteKeys deletes keys in as many transactions as needed.
func (s *Store) deleteKeys(ctx context.Context, keys [][]byte) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// Records returns every Badger key and value, keyed by the key's bytes.
// It exists for tests that check a failed operation left the store exactly
// as it was, and for debugging; it reads the whole database.
func (s *Store) Records(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, nil, true, func(k, v []byte) error {
			out[string(k)] = v
			return nil
		})
	})
	return out, err
}

// InlineThreshold is the largest file size the store keeps inline.
func (s *Store) InlineThreshold() int64 { return s.inlineThreshold }

// recount runs when a pending marker shows that a process died while
// changing object reference counts: it sets every object's count from the
// layer indexes, the source of truth. Objects no layer names get no record,
// so the rest of recovery removes their bytes.
func (s *Store) recount(ctx context.Context) error {
	var markers [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte{kindPend}, false, func(k, _ []byte) error {
			markers = append(markers, k)
			return nil
		})
	})
	if err != nil || len(markers) == 0 {
		return err
	}
	want := map[digest.Digest]int64{}
	var layers []digest.Digest
	err = s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte{kindLayer}, true, func(_, v []byte) error {
			rec, err := decodeLayerRecord(v)
			if err != nil {
				return err
			}
			layers = append(layers, rec.DiffID)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, l := range layers {
		es, err := s.Entries(ctx, l)
		if err != nil {
			return err
		}
		seen := map[digest.Digest]bool{}
		for _, e := range es {
			if e.Type == TypeRegular && !seen[e.Digest] {
				seen[e.Digest] = true
				want[e.Digest]++
			}
		}
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err = s.db.View(func(txn *badger.Txn) error {
		return scan(txn, []byte{kindObject}, true, func(k, v []byte) error {
			_, d, err := parseDigestKey(k)
			if err != nil {
				return wb.Delete(k)
			}
			ov, err := decodeObjectValue(v)
			if err != nil {
				return err
			}
			if ov.Refs = want[d]; ov.Refs == 0 {
				return wb.Delete(k)
			}
			return wb.Set(k, ov.encode())
		})
	})
	if err != nil {
		return err
	}
	for _, k := range markers {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	return wb.Flush()
}
