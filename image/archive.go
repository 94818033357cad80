package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of layers as archives name them.
const (
	MediaTypeLayer          = ocispec.MediaTypeImageLayer
	MediaTypeLayerGzip      = ocispec.MediaTypeImageLayerGzip
	MediaTypeLayerZstd      = ocispec.MediaTypeImageLayerZstd
	MediaTypeDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerGzip     = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Annotations that carry an image's name in an OCI index.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = ocispec.AnnotationRefName
)

// Opener reopens a stream from its start; layers are read more than once
// (hash, then ingest) and never held in memory.
type Opener func() (io.ReadCloser, error)

// Layer is one layer blob of an archived image.
type Layer struct {
	// Digest of the blob as stored (compressed or not); empty when the
	// archive does not say (legacy docker-archive layer.tar).
	Digest digest.Digest
	// DiffID is the digest of the uncompressed tar, from the config.
	DiffID digest.Digest
	// Size of the blob as stored.
	Size int64
	// MediaType as the manifest names it, or as sniffed from the bytes.
	MediaType string
	// Open returns the blob's bytes as stored. When Digest is known the
	// reader fails at EOF if the bytes do not match it.
	Open Opener
}

// ArchiveImage is one image found in an archive.
type ArchiveImage struct {
	// Config is the raw config; its digest is the image ID and was checked
	// against the name the archive gave it.
	Config []byte
	ID     digest.Digest
	// RepoTags are the names the archive gives the image, normalised
	// (docker.io/library/busybox:latest). Empty for untagged images.
	RepoTags []string
	Layers   []Layer
}

// Archive is an opened docker-archive, OCI archive or OCI layout.
type Archive struct {
	Images []ArchiveImage
	// Format is "docker-archive" or "oci".
	Format string
	closer io.Closer
}

// Close releases the archive's file.
func (a *Archive) Close() error { return a.closer.Close() }

// OpenArchive opens an image archive on disk: a tar written by `docker save`
// (legacy or Docker 25+ form), an OCI archive (a tar of an OCI layout), or
// an OCI layout directory. The file must stay in place while layers are read.
// Compressed archives must be decompressed first (see Decompress).
func OpenArchive(p string) (*Archive, error) {
	fsys, closer, err := openFS(p)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	a, err := ReadArchiveFS(fsys)
	if err != nil {
		closer.Close()
		return nil, err
	}
	a.closer = closer
	return a, nil
}

// ReadArchiveFS reads the images of an archive laid out in fsys: a
// manifest.json (docker-archive) wins over an index.json (OCI layout),
// because Docker 25+ writes both and manifest.json carries the tags.
func ReadArchiveFS(fsys fs.FS) (*Archive, error) {
	a := &Archive{closer: io.NopCloser(nil)}
	var err error
	switch {
	case exists(fsys, "manifest.json"):
		a.Format = "docker-archive"
		a.Images, err = readDockerArchive(fsys)
	case exists(fsys, "index.json"):
		a.Format = "oci"
		a.Images, err = readOCILayout(fsys)
	default:
		return nil, fmt.Errorf("%w: neither manifest.json nor index.json found", ErrBadArchive)
	}
	if err != nil {
		return nil, err
	}
	if len(a.Images) == 0 {
		return nil, fmt.Errorf("%w: no images", ErrBadArchive)
	}
	return a, nil
}

func exists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// maxJSON bounds the metadata files read into memory.
const maxJSON = 16 << 20

func readJSONFile(fsys fs.FS, name string, v any) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJSON+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrBadArchive, name, err)
	}
	if len(b) > maxJSON {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadArchive, name, maxJSON)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("%w: parse %s: %v", ErrBadArchive, name, err)
		}
	}
	return b, nil
}

// archivePath checks a path named inside an archive's metadata.
func archivePath(p string) (string, error) {
	c := path.Clean(strings.TrimPrefix(p, "./"))
	if !fs.ValidPath(c) || c == "." {
		return "", fmt.Errorf("%w: path %q escapes the archive", ErrBadArchive, p)
	}
	return c, nil
}

// blobPath is where an OCI layout keeps a blob.
func blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%w: digest %q: %v", ErrBadArchive, d, err)
	}
	return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
}

// digestFromBlobPath recognises blobs/sha256/<hex>.
func digestFromBlobPath(p string) digest.Digest {
	parts := strings.Split(p, "/")
	if len(parts) == 3 && parts[0] == "blobs" {
		d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
		if d.Validate() == nil {
			return d
		}
	}
	return ""
}

// dockerManifestEntry is one image of a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config       string
	RepoTags     []string
	Layers       []string
	LayerSources map[digest.Digest]ocispec.Descriptor `json:",omitempty"`
}

func readDockerArchive(fsys fs.FS) ([]ArchiveImage, error) {
	var entries []dockerManifestEntry
	if _, err := readJSONFile(fsys, "manifest.json", &entries); err != nil {
		return nil, err
	}
	// An OCI index beside the manifest (Docker 25+) gives the layers' media
	// types; without it they are sniffed.
	mediaTypes := map[digest.Digest]string{}
	if exists(fsys, "index.json") {
		if imgs, err := readOCILayout(fsys); err == nil {
			for _, img := range imgs {
				for _, l := range img.Layers {
					mediaTypes[l.Digest] = l.MediaType
				}
			}
		}
	}
	var images []ArchiveImage
	for i, e := range entries {
		cfgPath, err := archivePath(e.Config)
		if err != nil {
			return nil, err
		}
		cfgBytes, err := readJSONFile(fsys, cfgPath, nil)
		if err != nil {
			return nil, err
		}
		id := digest.FromBytes(cfgBytes)
		if want := digestFromBlobPath(cfgPath); want != "" && want != id {
			return nil, fmt.Errorf("%w: config %s has digest %s", ErrBadArchive, cfgPath, id)
		}
		if base := strings.TrimSuffix(path.Base(cfgPath), ".json"); len(base) == 64 && base != id.Encoded() {
			return nil, fmt.Errorf("%w: config %s has digest %s", ErrBadArchive, cfgPath, id)
		}
		cfg, err := ParseConfig(cfgBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: image %d: %v", ErrBadArchive, i, err)
		}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return nil, fmt.Errorf("%w: image %d: %d layers but %d diff_ids", ErrBadArchive, i, len(e.Layers), len(cfg.RootFS.DiffIDs))
		}
		img := ArchiveImage{Config: cfgBytes, ID: id}
		for _, t := range e.RepoTags {
			ref, err := ParseReference(t)
			if err != nil {
				return nil, fmt.Errorf("%w: image %d: %v", ErrBadArchive, i, err)
			}
			img.RepoTags = append(img.RepoTags, ref.String())
		}
		for j, lp := range e.Layers {
			p, err := archivePath(lp)
			if err != nil {
				return nil, err
			}
			l, err := fsLayer(fsys, p, digestFromBlobPath(p), mediaTypes[digestFromBlobPath(p)])
			if err != nil {
				return nil, err
			}
			l.DiffID = cfg.RootFS.DiffIDs[j]
			if l.Digest == "" && isUncompressed(l.MediaType) {
				// An uncompressed layer's blob digest is its diff_id.
				l.Digest = l.DiffID
			}
			img.Layers = append(img.Layers, l)
		}
		images = append(images, img)
	}
	return images, nil
}

func isUncompressed(mt string) bool {
	return mt == MediaTypeLayer || mt == MediaTypeDockerLayer
}

// fsLayer describes the blob at p; mediaType is sniffed when empty.
func fsLayer(fsys fs.FS, p string, dgst digest.Digest, mediaType string) (Layer, error) {
	st, err := fs.Stat(fsys, p)
	if err != nil {
		return Layer{}, fmt.Errorf("%w: layer %s: %v", ErrBadArchive, p, err)
	}
	open := func() (io.ReadCloser, error) {
		f, err := fsys.Open(p)
		if err != nil {
			return nil, fmt.Errorf("%w: layer %s: %v", ErrBadArchive, p, err)
		}
		if dgst == "" {
			return f, nil
		}
		return VerifyReader(f, dgst, st.Size()), nil
	}
	if mediaType == "" {
		f, err := fsys.Open(p)
		if err != nil {
			return Layer{}, fmt.Errorf("%w: layer %s: %v", ErrBadArchive, p, err)
		}
		head := make([]byte, 8)
		n, _ := io.ReadFull(f, head)
		f.Close()
		switch Sniff(head[:n]) {
		case "gzip":
			mediaType = MediaTypeLayerGzip
		case "zstd":
			mediaType = MediaTypeLayerZstd
		default:
			mediaType = MediaTypeLayer
		}
	}
	return Layer{Digest: dgst, Size: st.Size(), MediaType: mediaType, Open: open}, nil
}

func readOCILayout(fsys fs.FS) ([]ArchiveImage, error) {
	var layout ocispec.ImageLayout
	if exists(fsys, "oci-layout") {
		if _, err := readJSONFile(fsys, "oci-layout", &layout); err != nil {
			return nil, err
		}
	}
	var index ocispec.Index
	if _, err := readJSONFile(fsys, "index.json", &index); err != nil {
		return nil, err
	}
	var images []ArchiveImage
	byID := map[digest.Digest]int{}
	var walk func(descs []ocispec.Descriptor, depth int) error
	walk = func(descs []ocispec.Descriptor, depth int) error {
		if depth > 4 {
			return fmt.Errorf("%w: indexes nested too deep", ErrBadArchive)
		}
		for _, d := range descs {
			switch d.MediaType {
			case ocispec.MediaTypeImageIndex, MediaTypeDockerList:
				var sub ocispec.Index
				if err := readBlobJSON(fsys, d, &sub); err != nil {
					return err
				}
				// A nested index's names apply to what it holds.
				for i := range sub.Manifests {
					if sub.Manifests[i].Annotations == nil && d.Annotations != nil {
						sub.Manifests[i].Annotations = d.Annotations
					}
				}
				if err := walk(sub.Manifests, depth+1); err != nil {
					return err
				}
			case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
				img, err := ociImage(fsys, d)
				if err != nil {
					return err
				}
				if img == nil {
					continue // another platform whose blobs are absent
				}
				name := imageName(d.Annotations)
				if k, ok := byID[img.ID]; ok {
					if name != "" {
						images[k].RepoTags = appendUnique(images[k].RepoTags, name)
					}
					continue
				}
				if name != "" {
					img.RepoTags = []string{name}
				}
				byID[img.ID] = len(images)
				images = append(images, *img)
			default:
				// Attestations and unknown artifacts are not images.
			}
		}
		return nil
	}
	if err := walk(index.Manifests, 0); err != nil {
		return nil, err
	}
	return images, nil
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// imageName reads an image's name from index annotations: containerd's full
// name, or an OCI ref name that is a full reference (a bare tag such as
// "latest" names no repository and is ignored).
func imageName(ann map[string]string) string {
	for _, key := range []string{AnnotationImageName, AnnotationRefName} {
		v := ann[key]
		if v == "" || (key == AnnotationRefName && !strings.ContainsAny(v, ":/")) {
			continue
		}
		if ref, err := ParseReference(v); err == nil {
			return ref.String()
		}
	}
	return ""
}

func readBlob(fsys fs.FS, d ocispec.Descriptor) ([]byte, error) {
	p, err := blobPath(d.Digest)
	if err != nil {
		return nil, err
	}
	if d.Size > maxJSON {
		return nil, fmt.Errorf("%w: blob %s is larger than %d bytes", ErrBadArchive, d.Digest, maxJSON)
	}
	b, err := readJSONFile(fsys, p, nil)
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(b); got != d.Digest {
		return nil, fmt.Errorf("%w: blob %s has digest %s", ErrBadArchive, d.Digest, got)
	}
	if d.Size != 0 && int64(len(b)) != d.Size {
		return nil, fmt.Errorf("%w: blob %s has size %d, want %d", ErrBadArchive, d.Digest, len(b), d.Size)
	}
	return b, nil
}

func readBlobJSON(fsys fs.FS, d ocispec.Descriptor, v any) error {
	b, err := readBlob(fsys, d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: parse %s: %v", ErrBadArchive, d.Digest, err)
	}
	return nil
}

// ociImage reads one manifest; it returns nil when the manifest's blob is
// not in the layout (an index may list platforms that were not saved).
func ociImage(fsys fs.FS, d ocispec.Descriptor) (*ArchiveImage, error) {
	if p, err := blobPath(d.Digest); err == nil && !exists(fsys, p) && d.Platform != nil {
		return nil, nil
	}
	var m ocispec.Manifest
	if err := readBlobJSON(fsys, d, &m); err != nil {
		return nil, err
	}
	cfgBytes, err := readBlob(fsys, m.Config)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(cfgBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: manifest %s: %d layers but %d diff_ids", ErrBadArchive, d.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	img := &ArchiveImage{Config: cfgBytes, ID: m.Config.Digest}
	for i, ld := range m.Layers {
		p, err := blobPath(ld.Digest)
		if err != nil {
			return nil, err
		}
		l, err := fsLayer(fsys, p, ld.Digest, ld.MediaType)
		if err != nil {
			return nil, err
		}
		if ld.Size != 0 && l.Size != ld.Size {
			return nil, fmt.Errorf("%w: layer %s has size %d, want %d", ErrBadArchive, ld.Digest, l.Size, ld.Size)
		}
		l.DiffID = cfg.RootFS.DiffIDs[i]
		img.Layers = append(img.Layers, l)
	}
	return img, nil
}

// Sniff names the compression of a stream from its first bytes: "gzip",
// "zstd", or "" for none.
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	}
	return ""
}

// Decompress returns r uncompressed, whether it is plain, gzip or zstd.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(4)
	switch Sniff(head) {
	case "gzip":
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrBadArchive, err)
		}
		return z, nil
	case "zstd":
		z, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrBadArchive, err)
		}
		return z.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// ErrDigestMismatch is returned at the end of a verified stream whose bytes
// do not have the expected digest or size.
var ErrDigestMismatch = fmt.Errorf("%w: digest mismatch", ErrBadArchive)

// VerifyReader hashes r while it is read and fails at EOF with
// ErrDigestMismatch when the bytes do not match want (or size, if >= 0).
func VerifyReader(r io.ReadCloser, want digest.Digest, size int64) io.ReadCloser {
	return &verifyReader{r: r, want: want, size: size, h: sha256.New()}
}

type verifyReader struct {
	r    io.ReadCloser
	want digest.Digest
	size int64
	n    int64
	h    hash.Hash
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("%w: %s: read %d bytes, want %d", ErrDigestMismatch, v.want, v.n, v.size)
		}
		if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); v.want.Algorithm() == digest.SHA256 && got != v.want.String() {
			return n, fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, got, v.want)
		}
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.r.Close() }
