package registry_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layout builds OCI image layouts for skopeo to push: layers made in the
// test, compressed with gzip or zstd, one image or an index of several
// platforms. It is the tests' own writer, independent of package image.
type layout struct {
	t   testing.TB
	dir string
}

func newLayout(t testing.TB) *layout {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return &layout{t: t, dir: dir}
}

func (l *layout) blob(b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	if err := os.WriteFile(filepath.Join(l.dir, "blobs", "sha256", d.Encoded()), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
}

// tarOf is a layer tar of name → content files.
func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range sortedKeys(files) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	return b.Bytes()
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func compress(t testing.TB, kind string, b []byte) ([]byte, string) {
	t.Helper()
	var out bytes.Buffer
	switch kind {
	case "zstd":
		w, _ := zstd.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes(), ocispec.MediaTypeImageLayerZstd
	default:
		w := gzip.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes(), ocispec.MediaTypeImageLayerGzip
	}
}

// testImg is an image written into a layout.
type testImg struct {
	ID       digest.Digest
	DiffIDs  []digest.Digest
	Manifest ocispec.Descriptor
}

// image writes one image of the given layer tars; cmd makes configs differ.
func (l *layout) image(arch, cmd, compression string, layers ...[]byte) testImg {
	l.t.Helper()
	var img testImg
	var m ocispec.Manifest
	m.SchemaVersion = 2
	m.MediaType = ocispec.MediaTypeImageManifest
	for _, tb := range layers {
		img.DiffIDs = append(img.DiffIDs, digest.FromBytes(tb))
		cb, mt := compress(l.t, compression, tb)
		d := l.blob(cb)
		d.MediaType = mt
		m.Layers = append(m.Layers, d)
	}
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := ocispec.Image{Created: &created, Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		Config: ocispec.ImageConfig{Cmd: []string{cmd}}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: img.DiffIDs}}
	cb, _ := json.Marshal(cfg)
	m.Config = l.blob(cb)
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	img.ID = m.Config.Digest
	mb, _ := json.Marshal(m)
	img.Manifest = l.blob(mb)
	img.Manifest.MediaType = ocispec.MediaTypeImageManifest
	img.Manifest.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
	return img
}

// index writes index.json naming one image, or an image index of several
// under one name when more are given. It returns the skopeo source.
func (l *layout) index(imgs ...testImg) string {
	l.t.Helper()
	top := imgs[0].Manifest
	if len(imgs) > 1 {
		var ix ocispec.Index
		ix.SchemaVersion = 2
		ix.MediaType = ocispec.MediaTypeImageIndex
		for _, i := range imgs {
			ix.Manifests = append(ix.Manifests, i.Manifest)
		}
		b, _ := json.Marshal(ix)
		top = l.blob(b)
		top.MediaType = ocispec.MediaTypeImageIndex
	}
	top.Platform = nil
	top.Annotations = map[string]string{ocispec.AnnotationRefName: "x"}
	var ix ocispec.Index
	ix.SchemaVersion = 2
	ix.MediaType = ocispec.MediaTypeImageIndex
	ix.Manifests = []ocispec.Descriptor{top}
	b, _ := json.Marshal(ix)
	os.WriteFile(filepath.Join(l.dir, "index.json"), b, 0o644)
	return "oci:" + l.dir + ":x"
}

// diffIDsOfLayout reads an OCI layout skopeo wrote and returns its image's
// config digest and the sha256 of each decompressed layer.
func diffIDsOfLayout(t testing.TB, dir string) (digest.Digest, []digest.Digest, []string) {
	t.Helper()
	read := func(d digest.Digest) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var ix ocispec.Index
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &ix)
	var m ocispec.Manifest
	json.Unmarshal(read(ix.Manifests[0].Digest), &m)
	var out []digest.Digest
	var types []string
	for _, l := range m.Layers {
		zr, err := gzip.NewReader(bytes.NewReader(read(l.Digest)))
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, zr); err != nil {
			t.Fatal(err)
		}
		out = append(out, digest.NewDigest(digest.SHA256, h))
		types = append(types, l.MediaType)
	}
	return m.Config.Digest, out, types
}
