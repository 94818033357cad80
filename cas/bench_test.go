package cas_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/cas"
)

// writeOneFileLayer writes a tar holding one incompressible file of size
// bytes to path.
func writeOneFileLayer(tb testing.TB, path string, size int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big.bin", Mode: 0o644, Size: size}); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.CopyN(tw, rand.Reader, size); err != nil {
		tb.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkIngest ingests a plain layer holding one incompressible 64 MiB
// file into a fresh store each time; bytes/s is the uncompressed rate.
func BenchmarkIngest(b *testing.B) {
	const size = 64 << 20
	layer := filepath.Join(b.TempDir(), "layer.tar")
	writeOneFileLayer(b, layer, size)
	data, err := os.ReadFile(layer)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		s, err := cas.Open(ctx, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.IngestLayer(ctx, bytes.NewReader(data), cas.IngestOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// TestMeasureIngest ingests a layer file named by FUSEBOX_MEASURE_LAYER
// (made with one incompressible file of FUSEBOX_MEASURE_SIZE bytes when
// absent) and logs the rate; compare with sha256sum of the same file.
// It only runs when FUSEBOX_MEASURE_LAYER is set.
func TestMeasureIngest(t *testing.T) {
	layer := os.Getenv("FUSEBOX_MEASURE_LAYER")
	if layer == "" {
		t.Skip("set FUSEBOX_MEASURE_LAYER to a path to measure ingest throughput")
	}
	if _, err := os.Stat(layer); err != nil {
		size, _ := strconv.ParseInt(os.Getenv("FUSEBOX_MEASURE_SIZE"), 10, 64)
		if size == 0 {
			size = 1 << 30
		}
		writeOneFileLayer(t, layer, size)
	}
	ctx := context.Background()
	root := os.Getenv("FUSEBOX_MEASURE_ROOT")
	if root == "" {
		root = t.TempDir()
	}
	s, err := cas.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := os.Open(layer)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	info, err := s.IngestLayer(ctx, f, cas.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("ingested %d bytes in %v: %.1f MB/s (diff_id %s)", info.Size, el, float64(info.Size)/el.Seconds()/1e6, info.DiffID)
}

// TestMeasureDedup makes two images from the regular files under the
// directory FUSEBOX_MEASURE_DEDUP, the second with one file in twenty
// changed, and logs what deduplication saves. It only runs when the
// variable is set.
func TestMeasureDedup(t *testing.T) {
	src := os.Getenv("FUSEBOX_MEASURE_DEDUP")
	if src == "" {
		t.Skip("set FUSEBOX_MEASURE_DEDUP to a directory to measure deduplication")
	}
	ctx := context.Background()
	s, err := cas.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	build := func(change bool) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		i := 0
		err := filepath.WalkDir(src, func(p string, de os.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			if i++; change && i%20 == 0 {
				data = append(data, '\n')
			}
			rel, _ := filepath.Rel(src, p)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(data))}); err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		tw.Close()
		return buf.Bytes()
	}
	files := 0
	for i, change := range []bool{false, true} {
		info, err := s.IngestLayer(ctx, bytes.NewReader(build(change)), cas.IngestOptions{})
		if err != nil {
			t.Fatal(err)
		}
		files = info.Files
		id, _ := s.PutBlob(ctx, []byte(strconv.Itoa(i)))
		if err := s.PutImage(ctx, cas.ImageRecord{ID: id, DiffIDs: []digest.Digest{info.DiffID}}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := u.ObjectBytes + u.InlineBytes
	t.Logf("two images of %d files each (1 in 20 changed): logical %d bytes, stored %d bytes (%d object files, %d inline), saved %d bytes (%.1f%%)",
		files, u.LogicalBytes, stored, u.ObjectFiles, u.InlineObjects, u.SavedBytes, 100*float64(u.SavedBytes)/float64(u.LogicalBytes))
}
