package bench

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/fusebox/fusebox/internal/testenv"
)

// BenchmarkRandomContent measures the data set's content generator, which
// bounds how fast a data set can be built.
func BenchmarkRandomContent(b *testing.B) {
	buf := make([]byte, 1<<20)
	rng := seeded("bench")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		rng.Read(buf)
	}
}

// benchLayers builds a tiny data set for the read baselines.
func benchLayers(b *testing.B) *Dataset {
	b.Helper()
	testenv.RequireRoot(b, "the data set has whiteouts")
	if _, err := os.Stat("/bin/busybox"); err != nil {
		b.Skip("needs /bin/busybox")
	}
	ds, err := PrepareDataset(context.Background(), b.TempDir(), tinySpec(), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	return ds
}

// BenchmarkDirectReadSmall reads one small file of the tree layer straight
// from the host file system, page cache warm, no union: the floor that
// layerfs's inline-file read (BenchmarkReadInline) is held against.
func BenchmarkDirectReadSmall(b *testing.B) {
	ds := benchLayers(b)
	p := filepath.Join(ds.Dir, "layers/1-tree", ds.SmallFile)
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDirectReadBig reads the big file in 1 MiB pieces straight from
// the host file system, page cache warm: the floor for layerfs's object
// read (BenchmarkReadObject).
func BenchmarkDirectReadBig(b *testing.B) {
	ds := benchLayers(b)
	f, err := os.Open(filepath.Join(ds.Dir, "layers/2-big", ds.Big))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	size := ds.Spec.BigSize
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			b.Fatal(err)
		}
		off = (off + int64(len(buf))) % size
	}
}
