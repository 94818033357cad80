package layerfs_test

import (
	"bytes"
	"context"
	"errors"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
)

// casStore opens a store for the test, closed at its end; ingested layers
// stay held by a lease for the whole test.
func casStore(t *testing.T, opts ...cas.Option) (*cas.Store, *cas.Lease) {
	t.Helper()
	ctx := context.Background()
	st, err := cas.Open(ctx, t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lease := st.NewLease()
	t.Cleanup(func() {
		lease.Release(ctx)
		st.Close()
	})
	return st, lease
}

func ingest(t *testing.T, st *cas.Store, lease *cas.Lease, l layertest.Layer) digest.Digest {
	t.Helper()
	info, err := st.IngestLayer(context.Background(), bytes.NewReader(layertest.Tar(t, l)), cas.IngestOptions{Lease: lease})
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return info.DiffID
}

// casSourceMaker ingests each test layer into one real store per test and
// serves it through a CASLayers.
func casSourceMaker(opts ...cas.Option) layertest.MakeSource {
	var mu sync.Mutex
	perTest := map[*testing.T]*layerfs.CASLayers{}
	leases := map[*testing.T]*cas.Lease{}
	stores := map[*testing.T]*cas.Store{}
	return func(t *testing.T, l layertest.Layer) layerfs.Source {
		mu.Lock()
		layers, ok := perTest[t]
		if !ok {
			st, lease := casStore(t, opts...)
			layers = layerfs.NewCASLayers(st, nil)
			perTest[t], leases[t], stores[t] = layers, lease, st
			t.Cleanup(func() {
				mu.Lock()
				delete(perTest, t)
				delete(leases, t)
				delete(stores, t)
				mu.Unlock()
			})
		}
		st, lease := stores[t], leases[t]
		mu.Unlock()
		return layers.Layer(ingest(t, st, lease, l))
	}
}

func TestCASSourceConformance(t *testing.T) {
	layertest.Run(t, casSourceMaker())
}

// Every file in an object file: the passthrough and splice path.
func TestCASSourceConformanceNoInline(t *testing.T) {
	layertest.Run(t, casSourceMaker(cas.WithInlineThreshold(0)))
}

// TestCASSourceShared: one source per layer, its index loaded once and
// shared by every chain, and views built on another store never reused.
func TestCASSourceShared(t *testing.T) {
	ctx := context.Background()
	st, lease := casStore(t)
	d := ingest(t, st, lease, layertest.Layer{{Path: "f", Type: cas.TypeRegular, Mode: 0644, Data: []byte("x")}})
	layers := layerfs.NewCASLayers(st, nil)
	a, b := layers.Layer(d), layers.Layer(d)
	if a != b {
		t.Fatal("two sources for one layer")
	}
	e1, err := a.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := a.Entries(ctx)
	if &e1[0] != &e2[0] {
		t.Error("entries read twice")
	}
	if other := layerfs.NewCASLayers(st, nil).Layer(d); other.ID() == a.ID() {
		t.Errorf("two CASLayers share the ID %s", a.ID())
	}
	if !strings.Contains(a.ID(), d.String()) || a.DiffID() != d {
		t.Errorf("ID %s / DiffID %s do not name %s", a.ID(), a.DiffID(), d)
	}
	if _, err := layers.Layer(digest.FromString("missing")).Entries(ctx); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("entries of a missing layer: %v, want cas.ErrNotFound", err)
	}
}

// TestCASSourceCorruptObject: a flipped byte in an object file gives EIO
// and a log line, never the wrong bytes, and the verdict sticks; an intact
// object beside it reads back whole. Small objects are served in the
// kernel's caching mode, big ones through passthrough, whose check first
// drops the object's pages.
func TestCASSourceCorruptObject(t *testing.T) {
	layertest.Skip(t)
	for _, tc := range []struct {
		name string
		size int
	}{
		{"small", 10_000},
		{"passthrough", 300 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, lease := casStore(t, cas.WithInlineThreshold(0))
			good := bytes.Repeat([]byte("good data "), tc.size/10)
			fine := bytes.Repeat([]byte("fine data "), tc.size/10)
			d := ingest(t, st, lease, layertest.Layer{
				{Path: "bad", Type: cas.TypeRegular, Mode: 0644, Data: good},
				{Path: "fine", Type: cas.TypeRegular, Mode: 0644, Data: fine},
			})
			p, ok := st.ObjectPath(digest.FromBytes(good))
			if !ok {
				t.Fatal("no object file")
			}
			flipByte(t, p, int64(tc.size/2))
			var logbuf syncBuffer
			layers := layerfs.NewCASLayers(st, log.New(&logbuf, "", 0))
			_, mnt := layertest.MountT(t, layerfs.MountOptions{Lowers: []layerfs.Source{layers.Layer(d)}})
			for i := 0; i < 2; i++ {
				b, err := os.ReadFile(filepath.Join(mnt, "bad"))
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("read of a corrupt object: %d bytes, %v; want EIO", len(b), err)
				}
			}
			for i := 0; i < 2; i++ {
				if b, err := os.ReadFile(filepath.Join(mnt, "fine")); err != nil || !bytes.Equal(b, fine) {
					t.Errorf("intact file: %d bytes, %v; want %d bytes", len(b), err, len(fine))
				}
			}
			if got := logbuf.String(); strings.Count(got, "digest mismatch") != 1 {
				t.Errorf("log %q: want one digest mismatch line", got)
			}
		})
	}
}

func flipByte(t *testing.T, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCASSourceOpenCancelled: a FUSE request's context is cancelled by any
// signal to the reader (Go's preemption signals too); an open must not
// fail for that while the object is checked.
func TestCASSourceOpenCancelled(t *testing.T) {
	st, lease := casStore(t, cas.WithInlineThreshold(0))
	data := bytes.Repeat([]byte("y"), 1<<20)
	d := ingest(t, st, lease, layertest.Layer{{Path: "f", Type: cas.TypeRegular, Mode: 0644, Data: data}})
	src := layerfs.NewCASSource(st, d)
	ctx, cancel := context.WithCancel(context.Background())
	es, err := src.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for i := range es {
		if es[i].Type != cas.TypeRegular {
			continue
		}
		c, err := src.Open(ctx, &es[i])
		if err != nil || c.File == nil {
			t.Fatalf("open with a cancelled context: %+v, %v", c, err)
		}
		c.File.Close()
	}
}
