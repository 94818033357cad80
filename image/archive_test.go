package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerTar builds a small layer tar with the given files.
func layerTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range sortedKeys(files) {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
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

func configFor(t *testing.T, layers [][]byte, cmd string) []byte {
	t.Helper()
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	c := Config{}
	c.Created = &created
	c.Architecture, c.OS = "amd64", "linux"
	c.Config.Cmd = []string{cmd}
	c.RootFS.Type = "layers"
	for _, l := range layers {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, digest.FromBytes(l))
		c.History = append(c.History, History{Created: &created, CreatedBy: "ADD layer"})
	}
	c.History = append(c.History, History{Created: &created, CreatedBy: "CMD " + cmd, EmptyLayer: true})
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func saveImage(cfg []byte, tags []string, layers ...[]byte) SaveImage {
	img := SaveImage{Config: cfg, RepoTags: tags}
	for _, l := range layers {
		l := l
		img.Layers = append(img.Layers, SaveLayer{DiffID: digest.FromBytes(l), Size: int64(len(l)), Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(l)), nil
		}})
	}
	return img
}

// testImages are two images sharing their base layer.
func testImages(t *testing.T) ([]SaveImage, map[digest.Digest][]byte) {
	base := layerTar(t, map[string]string{"bin/sh": "shell", "etc/passwd": "root:x:0:0"})
	top1 := layerTar(t, map[string]string{"app/one": "1"})
	top2 := layerTar(t, map[string]string{"app/two": "22"})
	blobs := map[digest.Digest][]byte{digest.FromBytes(base): base, digest.FromBytes(top1): top1, digest.FromBytes(top2): top2}
	return []SaveImage{
		saveImage(configFor(t, [][]byte{base, top1}, "one"), []string{"docker.io/library/one:latest", "example.com/team/one:v1"}, base, top1),
		saveImage(configFor(t, [][]byte{base, top2}, "two"), nil, base, top2),
	}, blobs
}

func writeSaved(t *testing.T, images []SaveImage) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "save.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveArchive(context.Background(), f, images); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkImages compares what an archive gave back with what was saved:
// same IDs, same tags, layers that read back to their diff_ids.
// A tool that converts the image (skopeo to OCI) may re-encode the config;
// then sameConfig is false and images are matched by position.
func checkImages(t *testing.T, a *Archive, want []SaveImage, wantTags bool, sameConfig ...bool) {
	t.Helper()
	if len(a.Images) != len(want) {
		t.Fatalf("%d images, want %d", len(a.Images), len(want))
	}
	byID := map[digest.Digest]ArchiveImage{}
	for _, img := range a.Images {
		byID[img.ID] = img
		if img.ID != digest.FromBytes(img.Config) {
			t.Errorf("image ID %s is not the config digest", img.ID)
		}
	}
	for k, w := range want {
		id := digest.FromBytes(w.Config)
		got, ok := byID[id]
		if len(sameConfig) > 0 && !sameConfig[0] {
			got, ok = a.Images[k], true
		}
		if !ok {
			t.Fatalf("image %s missing", id)
		}
		if wantTags && !reflect.DeepEqual(got.RepoTags, w.RepoTags) {
			t.Errorf("tags %v, want %v", got.RepoTags, w.RepoTags)
		}
		if len(got.Layers) != len(w.Layers) {
			t.Fatalf("%d layers, want %d", len(got.Layers), len(w.Layers))
		}
		for i, l := range got.Layers {
			if l.DiffID != w.Layers[i].DiffID {
				t.Errorf("layer %d diff_id %s, want %s", i, l.DiffID, w.Layers[i].DiffID)
			}
			for range 2 { // reopenable
				rc, err := l.Open()
				if err != nil {
					t.Fatal(err)
				}
				dr, err := Decompress(rc)
				if err != nil {
					t.Fatal(err)
				}
				if d, err := digest.FromReader(dr); err != nil || d != l.DiffID {
					t.Fatalf("layer %d reads back as %s (%v), want %s", i, d, err, l.DiffID)
				}
				rc.Close()
			}
		}
	}
}

func TestSaveOpenRoundTrip(t *testing.T) {
	images, _ := testImages(t)
	p := writeSaved(t, images)
	a, err := OpenArchive(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Format != "docker-archive" {
		t.Errorf("format %s", a.Format)
	}
	checkImages(t, a, images, true)
	for _, l := range a.Images[0].Layers {
		if l.MediaType != ocispec.MediaTypeImageLayer || l.Digest != l.DiffID {
			t.Errorf("layer %s: media type %s digest %s", l.DiffID, l.MediaType, l.Digest)
		}
	}

	// The same bytes read as an OCI archive (index.json only).
	fsys, closer, err := openFS(p)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	imgs, err := readOCILayout(fsys)
	if err != nil {
		t.Fatal(err)
	}
	checkImages(t, &Archive{Images: imgs}, images, true)

	// Saving twice gives the same bytes.
	p2 := writeSaved(t, images)
	b1, _ := os.ReadFile(p)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Error("save is not deterministic")
	}
	// Each shared layer is in the archive once.
	if n := strings.Count(string(b1), "blobs/sha256/"+images[0].Layers[0].DiffID.Encoded()); n < 1 {
		t.Errorf("base layer missing")
	}
}

func TestSaveArchiveReaderBadLayer(t *testing.T) {
	images, _ := testImages(t)
	images[0].Layers[1].Open = func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(strings.Repeat("x", int(images[0].Layers[1].Size)))), nil
	}
	rc := SaveArchiveReader(context.Background(), images)
	_, err := io.Copy(io.Discard, rc)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
}

// TestLegacyDockerArchive reads the layout docker save wrote before
// Docker 25: <id>/layer.tar, <id>.json config, a symlinked duplicate layer.
func TestLegacyDockerArchive(t *testing.T) {
	base := layerTar(t, map[string]string{"a": "a"})
	top := layerTar(t, map[string]string{"b": "b"})
	cfg := configFor(t, [][]byte{base, top, base}, "legacy")
	id := digest.FromBytes(cfg)
	p := filepath.Join(t.TempDir(), "legacy.tar")
	f, _ := os.Create(p)
	tw := tar.NewWriter(f)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		h.Mode = 0o644
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	add(&tar.Header{Name: "l1/", Typeflag: tar.TypeDir}, nil)
	add(&tar.Header{Name: "l1/layer.tar"}, base)
	add(&tar.Header{Name: "l2/layer.tar"}, top)
	add(&tar.Header{Name: "l3/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../l1/layer.tar"}, nil)
	add(&tar.Header{Name: id.Encoded() + ".json"}, cfg)
	m, _ := json.Marshal([]dockerManifestEntry{{Config: id.Encoded() + ".json", RepoTags: []string{"legacy:1"}, Layers: []string{"l1/layer.tar", "l2/layer.tar", "l3/layer.tar"}}})
	add(&tar.Header{Name: "manifest.json"}, m)
	tw.Close()
	f.Close()

	a, err := OpenArchive(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	checkImages(t, a, []SaveImage{saveImage(cfg, []string{"docker.io/library/legacy:1"}, base, top, base)}, true)
}

func TestSkopeoInterop(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed (scripts/install-deps installs it)")
	}
	images, _ := testImages(t)
	images = images[:1]
	images[0].RepoTags = images[0].RepoTags[:1]
	p := writeSaved(t, images)
	dir := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("skopeo", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %v: %v\n%s", args, err, out)
		}
		return out
	}

	// skopeo reads what SaveArchive wrote, with the same layers.
	var insp struct{ Layers []string }
	json.Unmarshal(run("inspect", "docker-archive:"+p), &insp)
	want := []string{images[0].Layers[0].DiffID.String(), images[0].Layers[1].DiffID.String()}
	if !reflect.DeepEqual(insp.Layers, want) {
		t.Fatalf("skopeo sees layers %v, want %v", insp.Layers, want)
	}

	// skopeo's OCI layout (gzip layers), as a directory and as an archive.
	layout := filepath.Join(dir, "layout")
	run("copy", "--dest-compress", "docker-archive:"+p, "oci:"+layout+":one")
	a, err := OpenArchive(layout)
	if err != nil {
		t.Fatal(err)
	}
	checkImages(t, a, images, false, false)
	if a.Images[0].Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("media type %s", a.Images[0].Layers[0].MediaType)
	}
	ociTar := filepath.Join(dir, "oci.tar")
	run("copy", "docker-archive:"+p, "oci-archive:"+ociTar+":docker.io/library/one:latest")
	a, err = OpenArchive(ociTar)
	if err != nil {
		t.Fatal(err)
	}
	checkImages(t, a, images, true, false)

	// skopeo's own docker-archive writer.
	legacy := filepath.Join(dir, "skopeo-docker.tar")
	run("copy", "oci:"+layout+":one", "docker-archive:"+legacy+":one:latest")
	a, err = OpenArchive(legacy)
	if err != nil {
		t.Fatal(err)
	}
	checkImages(t, a, images, true, false)
}

func TestBadArchives(t *testing.T) {
	images, _ := testImages(t)
	good, err := os.ReadFile(writeSaved(t, images))
	if err != nil {
		t.Fatal(err)
	}
	tarOf := func(entries ...[2]string) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, e := range entries {
			tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o644, Size: int64(len(e[1])), Typeflag: tar.TypeReg})
			tw.Write([]byte(e[1]))
		}
		tw.Close()
		return b.Bytes()
	}
	cfg := string(images[0].Config)
	cfgName := "blobs/sha256/" + digest.FromBytes(images[0].Config).Encoded()
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated", good[:len(good)/2]},
		{"not a tar", []byte("hello, this is not an archive at all")},
		{"empty tar", tarOf()},
		{"traversal", tarOf([2]string{"../evil", "x"}, [2]string{"manifest.json", "[]"})},
		{"absolute", tarOf([2]string{"/etc/evil", "x"})},
		{"duplicate", tarOf([2]string{"manifest.json", "[]"}, [2]string{"manifest.json", "[]"})},
		{"bad manifest json", tarOf([2]string{"manifest.json", "{"})},
		{"manifest path escapes", tarOf([2]string{"manifest.json", `[{"Config":"../x.json","Layers":[]}]`})},
		{"missing config", tarOf([2]string{"manifest.json", `[{"Config":"nope.json","Layers":[]}]`})},
		{"config digest mismatch", tarOf([2]string{"blobs/sha256/" + hex64, cfg}, [2]string{"manifest.json", `[{"Config":"blobs/sha256/` + hex64 + `","Layers":[]}]`})},
		{"layer count mismatch", tarOf([2]string{cfgName, cfg}, [2]string{"manifest.json", `[{"Config":"` + cfgName + `","Layers":[]}]`})},
		{"missing layer", tarOf([2]string{cfgName, cfg}, [2]string{"manifest.json", `[{"Config":"` + cfgName + `","Layers":["a.tar","b.tar"]}]`})},
		{"bad index", tarOf([2]string{"index.json", `{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + hex64 + `","size":3}]}`})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.tar")
			os.WriteFile(p, tt.data, 0o644)
			a, err := OpenArchive(p)
			if err == nil {
				a.Close()
				t.Fatal("opened a bad archive")
			}
			if !errors.Is(err, ErrBadArchive) {
				t.Fatalf("err = %v, want ErrBadArchive", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}

	// A layer whose bytes were changed after the archive was written opens
	// fine and fails when read.
	corrupt := bytes.Clone(good)
	l := images[0].Layers[1]
	i := bytes.Index(corrupt, []byte("app/one"))
	if i < 0 {
		t.Fatal("layer content not found")
	}
	corrupt[i] = 'X'
	p := filepath.Join(t.TempDir(), "corrupt.tar")
	os.WriteFile(p, corrupt, 0o644)
	a, err := OpenArchive(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, img := range a.Images {
		for _, layer := range img.Layers {
			if layer.DiffID != l.DiffID {
				continue
			}
			rc, _ := layer.Open()
			_, err := io.Copy(io.Discard, rc)
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("err = %v, want ErrDigestMismatch", err)
			}
		}
	}
}

func TestDecompress(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("payload"))
	zw.Close()
	for name, in := range map[string][]byte{"plain": []byte("payload"), "gzip": gz.Bytes()} {
		rc, err := Decompress(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		if string(b) != "payload" {
			t.Errorf("%s: got %q", name, b)
		}
	}
}
