package testdata

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Image is a built test image: where its files are and what a correct
// loader must find in them. Paths are absolute; the files are shared by every
// test of the cache and must be treated as read-only.
type Image struct {
	// Name and Tag make the reference the archives carry: RepoTags
	// "Name:Tag" in the docker-archive, ref.name "Tag" in the OCI index.
	Name string `json:"name"`
	Tag  string `json:"tag"`
	// ID is the config's digest, which is Docker's image ID.
	ID digest.Digest `json:"id"`
	// DiffIDs are the sha256 of each uncompressed layer tar, bottom first,
	// as listed in the config's rootfs.diff_ids.
	DiffIDs []digest.Digest `json:"diff_ids"`
	// ManifestDigest and LayerDigests describe the OCI layout: its manifest,
	// and its layer blobs, which are gzip-compressed (so they differ from
	// DiffIDs). Empty when the image has no OCI form.
	ManifestDigest digest.Digest   `json:"manifest_digest,omitempty"`
	LayerDigests   []digest.Digest `json:"layer_digests,omitempty"`
	// Config is the path of the config JSON (the bytes whose digest is ID).
	Config string `json:"config"`
	// DockerArchive is a `docker save` style tar: manifest.json,
	// repositories, <id>.json and <v1id>/layer.tar (plain tars).
	DockerArchive string `json:"docker_archive"`
	// DockerSave25 is the same image as `docker save` writes it since
	// Docker 25: an OCI layout with uncompressed layer blobs (whose
	// digests are the DiffIDs) plus manifest.json and repositories.
	// Empty when the image has no OCI form.
	DockerSave25 string `json:"docker_save_25,omitempty"`
	// OCILayout is an OCI image layout directory and OCIArchive the same
	// layout as a tar. Empty when the image has no OCI form.
	OCILayout  string `json:"oci_layout,omitempty"`
	OCIArchive string `json:"oci_archive,omitempty"`
	// LayerTars are the uncompressed layer tars, bottom first, for tests
	// that ingest one layer. Empty for images too big to keep twice.
	LayerTars []string `json:"layer_tars,omitempty"`
	// LowerDirs are the layers extracted one per directory, bottom first, in
	// overlayfs's format (0/0 character-device whiteouts,
	// trusted.overlay.opaque=y). Empty when not built for this image.
	LowerDirs []string `json:"lower_dirs,omitempty"`
	// Dir is the cache directory that holds all of the above.
	Dir string `json:"-"`
}

// RepoTag is the image's reference as `docker images` shows it, e.g.
// "busybox:latest".
func (img *Image) RepoTag() string { return img.Name + ":" + img.Tag }

// LowerDirOption is the value of overlayfs's lowerdir= option for the image's
// lower directories: top layer first, colon-separated.
func (img *Image) LowerDirOption() string {
	dirs := slices.Clone(img.LowerDirs)
	slices.Reverse(dirs)
	return strings.Join(dirs, ":")
}

// relocate turns the paths stored relative to the cache directory into
// absolute ones under dir.
func (img *Image) relocate(dir string) {
	img.Dir = dir
	abs := func(p *string) {
		if *p != "" {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&img.Config)
	abs(&img.DockerArchive)
	abs(&img.DockerSave25)
	abs(&img.OCILayout)
	abs(&img.OCIArchive)
	for i := range img.LayerTars {
		abs(&img.LayerTars[i])
	}
	for i := range img.LowerDirs {
		abs(&img.LowerDirs[i])
	}
}

// layer is one layer of an image to build, with the history entry that
// made it.
type layer struct {
	entries   []entry
	createdBy string // %s is replaced by the hex of the layer's diff_id
}

// imageSpec is an image to build.
type imageSpec struct {
	name, tag string
	layers    []layer
	env       []string
	cmd       []string
	oci       bool // also write the OCI layout and archive
	keepTars  bool // keep the layer tars beside the archives
	lowerDirs bool // extract each layer to its own directory
}

// Config JSON, fields in the order Docker writes them.
type (
	imageConfig struct {
		Architecture string        `json:"architecture"`
		Config       runConfig     `json:"config"`
		Created      time.Time     `json:"created"`
		History      []historyItem `json:"history"`
		OS           string        `json:"os"`
		RootFS       rootFS        `json:"rootfs"`
	}
	runConfig struct {
		Env []string `json:"Env,omitempty"`
		Cmd []string `json:"Cmd,omitempty"`
	}
	historyItem struct {
		Created    time.Time `json:"created"`
		CreatedBy  string    `json:"created_by"`
		EmptyLayer bool      `json:"empty_layer,omitempty"`
	}
	rootFS struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	}
	descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      digest.Digest     `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Platform    *platform         `json:"platform,omitempty"`
	}
	platform struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	}
	ociManifest struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}
	ociIndex struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}
	dockerManifest struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
)

// build writes the image described by spec into dir (which exists and is
// empty) and returns it with paths relative to dir.
func build(dir string, spec imageSpec) (*Image, error) {
	img := &Image{Name: spec.name, Tag: spec.tag}
	if err := os.MkdirAll(filepath.Join(dir, "layers"), 0o755); err != nil {
		return nil, err
	}
	hist := make([]historyItem, 0, len(spec.layers)+1)
	var tars []string
	for i, l := range spec.layers {
		p := filepath.Join("layers", fmt.Sprintf("%d.tar", i))
		d, _, err := writeHashed(filepath.Join(dir, p), func(w io.Writer) error { return writeTar(w, l.entries) })
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		tars = append(tars, p)
		img.DiffIDs = append(img.DiffIDs, d)
		createdBy := l.createdBy
		if strings.Contains(createdBy, "%s") {
			createdBy = fmt.Sprintf(createdBy, d.Encoded())
		}
		hist = append(hist, historyItem{Created: epoch.Add(time.Duration(i) * time.Minute), CreatedBy: createdBy})
	}
	cmdJSON, _ := json.Marshal(spec.cmd)
	hist = append(hist, historyItem{
		Created:    epoch.Add(time.Duration(len(spec.layers)) * time.Minute),
		CreatedBy:  "/bin/sh -c #(nop)  CMD " + string(cmdJSON),
		EmptyLayer: true,
	})
	cfg := imageConfig{
		Architecture: runtime.GOARCH,
		Config:       runConfig{Env: spec.env, Cmd: spec.cmd},
		Created:      hist[len(hist)-1].Created,
		History:      hist,
		OS:           "linux",
		RootFS:       rootFS{Type: "layers", DiffIDs: img.DiffIDs},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	img.ID = digest.FromBytes(cfgJSON)
	img.Config = "config.json"
	if err := os.WriteFile(filepath.Join(dir, img.Config), cfgJSON, 0o644); err != nil {
		return nil, err
	}

	img.DockerArchive = "docker-archive.tar"
	if err := writeDockerArchive(filepath.Join(dir, img.DockerArchive), dir, img, cfgJSON, tars); err != nil {
		return nil, fmt.Errorf("docker-archive: %w", err)
	}
	if spec.oci {
		img.OCILayout, img.OCIArchive = "oci", "oci-archive.tar"
		img.ManifestDigest, img.LayerDigests, err = writeOCILayout(filepath.Join(dir, img.OCILayout), dir, img, cfgJSON, tars, true)
		if err != nil {
			return nil, fmt.Errorf("oci layout: %w", err)
		}
		if err := writeTreeTar(filepath.Join(dir, img.OCIArchive), filepath.Join(dir, img.OCILayout)); err != nil {
			return nil, fmt.Errorf("oci archive: %w", err)
		}
		img.DockerSave25 = "docker-save-25.tar"
		if err := writeDockerSave25(filepath.Join(dir, img.DockerSave25), dir, img, cfgJSON, tars); err != nil {
			return nil, fmt.Errorf("docker save 25 archive: %w", err)
		}
	}
	if spec.keepTars {
		img.LayerTars = tars
	} else if err := os.RemoveAll(filepath.Join(dir, "layers")); err != nil {
		return nil, err
	}
	if spec.lowerDirs {
		for i, l := range spec.layers {
			p := filepath.Join("lower", fmt.Sprintf("%d", i))
			if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
				return nil, err
			}
			if err := writeDir(filepath.Join(dir, p), l.entries); err != nil {
				return nil, fmt.Errorf("lower dir %d: %w", i, err)
			}
			img.LowerDirs = append(img.LowerDirs, p)
		}
	}
	return img, nil
}

// writeHashed creates p, lets fn write it, and returns the sha256 and size of
// what was written.
func writeHashed(p string, fn func(io.Writer) error) (d digest.Digest, n int64, err error) {
	f, err := os.Create(p)
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	if err := fn(cw); err != nil {
		return "", 0, err
	}
	return digest.NewDigest(digest.SHA256, h), cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// archiveFile is one member of an outer archive (docker-archive, OCI archive).
type archiveFile struct {
	name string // trailing slash for a directory
	data *content
}

// writeArchive writes files, sorted by name, as a tar with fixed metadata.
func writeArchive(p string, files []archiveFile) error {
	slices.SortFunc(files, func(a, b archiveFile) int { return strings.Compare(a.name, b.name) })
	_, _, err := writeHashed(p, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, f := range files {
			hdr := &tar.Header{Name: f.name, Mode: 0o644, ModTime: epoch, Typeflag: tar.TypeReg}
			if strings.HasSuffix(f.name, "/") {
				hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
			} else {
				hdr.Size = f.data.size
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if hdr.Size > 0 {
				if err := copyContent(tw, entry{path: f.name, data: f.data}); err != nil {
					return err
				}
			}
		}
		return tw.Close()
	})
	return err
}

func jsonContent(v any) (*content, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bytesContent(b), nil
}

// writeDockerArchive writes the format of `docker save` before Docker 25: a
// directory per layer named by a v1 ID (derived here from the chain of
// diff_ids), holding VERSION, json and layer.tar.
func writeDockerArchive(p, dir string, img *Image, cfgJSON []byte, tars []string) error {
	files := []archiveFile{{name: img.ID.Encoded() + ".json", data: bytesContent(cfgJSON)}}
	var layers []string
	parent := ""
	for i, t := range tars {
		v1 := digest.FromString(parent + " " + img.DiffIDs[i].String()).Encoded()
		v1JSON := map[string]string{"id": v1}
		if parent != "" {
			v1JSON["parent"] = parent
		}
		jc, err := jsonContent(v1JSON)
		if err != nil {
			return err
		}
		fi, err := os.Stat(filepath.Join(dir, t))
		if err != nil {
			return err
		}
		files = append(files,
			archiveFile{name: v1 + "/"},
			archiveFile{name: v1 + "/VERSION", data: bytesContent([]byte("1.0"))},
			archiveFile{name: v1 + "/json", data: jc},
			archiveFile{name: v1 + "/layer.tar", data: fileContent(filepath.Join(dir, t), fi.Size())},
		)
		layers = append(layers, v1+"/layer.tar")
		parent = v1
	}
	mc, err := jsonContent([]dockerManifest{{Config: img.ID.Encoded() + ".json", RepoTags: []string{img.RepoTag()}, Layers: layers}})
	if err != nil {
		return err
	}
	rc, err := jsonContent(map[string]map[string]string{img.Name: {img.Tag: parent}})
	if err != nil {
		return err
	}
	files = append(files, archiveFile{name: "manifest.json", data: mc}, archiveFile{name: "repositories", data: rc})
	return writeArchive(p, files)
}

// writeOCILayout writes an OCI image layout and returns its manifest's
// digest and its layer blobs' digests. With gz the layers are compressed:
// gzip with a zero header (no name, no mtime) at a fixed level is
// deterministic for a given Go release. Without, the blobs are the layer
// tars themselves, as `docker save` writes them.
func writeOCILayout(layout, dir string, img *Image, cfgJSON []byte, tars []string, gz bool) (digest.Digest, []digest.Digest, error) {
	blobs := filepath.Join(layout, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", nil, err
	}
	putBlob := func(b []byte) (digest.Digest, error) {
		d := digest.FromBytes(b)
		return d, os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644)
	}
	m := ociManifest{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.manifest.v1+json",
		Config:        descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Size: int64(len(cfgJSON))},
	}
	var err error
	if m.Config.Digest, err = putBlob(cfgJSON); err != nil {
		return "", nil, err
	}
	var layers []digest.Digest
	for _, t := range tars {
		tmp := filepath.Join(blobs, "tmp")
		d, n, err := writeHashed(tmp, func(w io.Writer) error {
			f, err := os.Open(filepath.Join(dir, t))
			if err != nil {
				return err
			}
			defer f.Close()
			if !gz {
				_, err := io.Copy(w, f)
				return err
			}
			zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
			if err != nil {
				return err
			}
			if _, err := io.Copy(zw, f); err != nil {
				return err
			}
			return zw.Close()
		})
		if err != nil {
			return "", nil, err
		}
		if err := os.Rename(tmp, filepath.Join(blobs, d.Encoded())); err != nil {
			return "", nil, err
		}
		layers = append(layers, d)
		mt := "application/vnd.oci.image.layer.v1.tar"
		if gz {
			mt += "+gzip"
		}
		m.Layers = append(m.Layers, descriptor{MediaType: mt, Digest: d, Size: n})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return "", nil, err
	}
	md, err := putBlob(mb)
	if err != nil {
		return "", nil, err
	}
	idx := ociIndex{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json", Manifests: []descriptor{{
		MediaType: m.MediaType,
		Digest:    md,
		Size:      int64(len(mb)),
		Annotations: map[string]string{
			"io.containerd.image.name":          "docker.io/library/" + img.RepoTag(),
			"org.opencontainers.image.ref.name": img.Tag,
		},
		Platform: &platform{Architecture: runtime.GOARCH, OS: "linux"},
	}}}
	ib, err := json.Marshal(idx)
	if err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(layout, "index.json"), ib, 0o644); err != nil {
		return "", nil, err
	}
	return md, layers, os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// writeDockerSave25 writes the format of `docker save` since Docker 25: an
// OCI layout with uncompressed layer blobs, plus manifest.json and
// repositories naming those blobs, so that both kinds of reader load it.
func writeDockerSave25(p, dir string, img *Image, cfgJSON []byte, tars []string) error {
	layout, err := os.MkdirTemp(dir, "docker-save-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(layout)
	_, layers, err := writeOCILayout(layout, dir, img, cfgJSON, tars, false)
	if err != nil {
		return err
	}
	m := dockerManifest{Config: "blobs/sha256/" + img.ID.Encoded(), RepoTags: []string{img.RepoTag()}}
	for _, l := range layers {
		m.Layers = append(m.Layers, "blobs/sha256/"+l.Encoded())
	}
	mc, err := jsonContent([]dockerManifest{m})
	if err != nil {
		return err
	}
	rc, err := jsonContent(map[string]map[string]string{img.Name: {img.Tag: layers[len(layers)-1].Encoded()}})
	if err != nil {
		return err
	}
	return writeTreeTar(p, layout, archiveFile{name: "manifest.json", data: mc}, archiveFile{name: "repositories", data: rc})
}

// writeTreeTar archives the regular files and directories under root.
// extra adds members that are not in the tree.
func writeTreeTar(p, root string, extra ...archiveFile) error {
	files := slices.Clone(extra)
	err := filepath.WalkDir(root, func(q string, d fs.DirEntry, err error) error {
		if err != nil || q == root {
			return err
		}
		rel, _ := filepath.Rel(root, q)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			files = append(files, archiveFile{name: rel + "/"})
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, archiveFile{name: rel, data: fileContent(q, fi.Size())})
		return nil
	})
	if err != nil {
		return err
	}
	return writeArchive(p, files)
}
