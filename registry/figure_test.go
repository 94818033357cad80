package registry_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fusebox/fusebox/internal/registrytest"
	"github.com/fusebox/fusebox/registry"
)

// TestFigurePull is the figure: pull of an image with one 1 GiB
// layer from a local registry, fusebox (streamed into the store, verified,
// indexed) against `skopeo copy` of the same image to a directory (bytes to
// files, verified), in the same run. Opt-in (FUSEBOX_FIGURES=1): it writes
// about 4 GiB and its numbers are for the report, never asserted.
func TestFigurePull(t *testing.T) {
	if os.Getenv("FUSEBOX_FIGURES") == "" {
		t.Skip("set FUSEBOX_FIGURES=1 to measure the pull figure")
	}
	size := int64(1 << 30)
	if mib, err := strconv.Atoi(os.Getenv("FUSEBOX_FIGURE_MIB")); err == nil && mib > 0 {
		size = int64(mib) << 20
	}
	reg := registrytest.Start(t, registrytest.Options{})
	src, blobSize := bigLayout(t, size)
	registrytest.Skopeo(t, "copy", "-q", "--dest-tls-verify=false", src, "docker://"+reg.Host+"/big:1")
	ref := ref(t, reg.Host+"/big:1")

	for round := 1; round <= 2; round++ {
		s := openStore(t)
		start := time.Now()
		if _, err := registry.Pull(context.Background(), s, ref, registry.PullOptions{}); err != nil {
			t.Fatal(err)
		}
		fb := time.Since(start)
		s.Close()

		dir := filepath.Join(t.TempDir(), "dir")
		start = time.Now()
		registrytest.Skopeo(t, "copy", "-q", "--src-tls-verify=false", "docker://"+reg.Host+"/big:1", "dir:"+dir)
		sk := time.Since(start)
		mb := float64(blobSize) / 1e6
		t.Logf("round %d: layer blob %.0f MB (%d MiB uncompressed): fusebox pull %.2fs = %.0f MB/s; skopeo copy to dir %.2fs = %.0f MB/s",
			round, mb, size>>20, fb.Seconds(), mb/fb.Seconds(), sk.Seconds(), mb/sk.Seconds())
		os.RemoveAll(dir)
	}
}

// bigLayout writes an OCI layout of one image whose single layer holds
// size bytes of pseudo-random data in 64 MiB files, gzip-compressed (at
// BestSpeed: random data does not compress, and the figure is about moving
// bytes). It returns the skopeo source and the blob's size.
func bigLayout(t testing.TB, size int64) (string, int64) {
	t.Helper()
	l := newLayout(t)
	f, err := os.CreateTemp(l.dir, "layer-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	blobHash, diffHash := sha256.New(), sha256.New()
	cw := &counter{w: io.MultiWriter(f, blobHash)}
	gz, _ := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	tw := tar.NewWriter(io.MultiWriter(gz, diffHash))
	rng := rand.NewChaCha8([32]byte{1})
	const fileSize = 64 << 20
	for i := int64(0); i*fileSize < size; i++ {
		n := min(fileSize, size-i*fileSize)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%03d.bin", i), Mode: 0o644, Size: n, Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(tw, rng, n); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	gz.Close()
	f.Close()
	blob := digest.NewDigest(digest.SHA256, blobHash)
	if err := os.Rename(f.Name(), filepath.Join(l.dir, "blobs", "sha256", blob.Encoded())); err != nil {
		t.Fatal(err)
	}
	diffID := digest.NewDigest(digest.SHA256, diffHash)
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := ocispec.Image{Created: &created, Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}}
	cb, _ := json.Marshal(cfg)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: l.blob(cb),
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: blob, Size: cw.n}}}
	m.SchemaVersion = 2
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	mb, _ := json.Marshal(m)
	md := l.blob(mb)
	md.MediaType = ocispec.MediaTypeImageManifest
	return l.index(testImg{Manifest: md}), cw.n
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
