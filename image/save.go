package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// SaveLayer is one uncompressed layer to write into an archive.
type SaveLayer struct {
	// DiffID is the digest of the layer tar; the archive names the blob by it
	// and the writer checks the bytes against it.
	DiffID digest.Digest
	// Size of the layer tar in bytes (the tar header needs it up front).
	Size int64
	// Open returns the layer tar.
	Open Opener
}

// SaveImage is one image to write into an archive.
type SaveImage struct {
	Config []byte
	// RepoTags are full references (docker.io/library/busybox:latest);
	// they are written in familiar form as `docker save` does.
	RepoTags []string
	Layers   []SaveLayer
}

// epoch is the modification time of every entry, so that saving the same
// images twice gives the same bytes.
var epoch = time.Unix(0, 0).UTC()

// SaveArchive streams images as a docker-archive in the form Docker 25+
// writes: an OCI layout (oci-layout, index.json, blobs/sha256/…) that is
// also a classic docker-archive (manifest.json, repositories), so both
// `docker load` and OCI tools read it. A layer shared by several images is
// written once. Layers are streamed from their openers and checked against
// their diff_id and size; a mismatch aborts the stream with an error.
func SaveArchive(ctx context.Context, w io.Writer, images []SaveImage) error {
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	writeBlob := func(d digest.Digest, b []byte) error {
		if written[d] {
			return nil
		}
		written[d] = true
		return writeFile(tw, "blobs/sha256/"+d.Encoded(), b)
	}
	var (
		index        = ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
		manifestJSON = []dockerManifestEntry{}
		repositories = map[string]map[string]string{}
	)
	for _, img := range images {
		cfgDigest := digest.FromBytes(img.Config)
		cfg, err := ParseConfig(img.Config)
		if err != nil {
			return err
		}
		if len(cfg.RootFS.DiffIDs) != len(img.Layers) {
			return fmt.Errorf("image %s: %d layers but %d diff_ids", cfgDigest, len(img.Layers), len(cfg.RootFS.DiffIDs))
		}
		if err := writeBlob(cfgDigest, img.Config); err != nil {
			return err
		}
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(img.Config))},
			Layers:    []ocispec.Descriptor{},
		}
		entry := dockerManifestEntry{Config: "blobs/sha256/" + cfgDigest.Encoded(), RepoTags: []string{}}
		for i, l := range img.Layers {
			if l.DiffID != cfg.RootFS.DiffIDs[i] {
				return fmt.Errorf("image %s: layer %d is %s, config says %s", cfgDigest, i, l.DiffID, cfg.RootFS.DiffIDs[i])
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if !written[l.DiffID] {
				written[l.DiffID] = true
				if err := writeLayer(tw, l); err != nil {
					return err
				}
			}
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.DiffID, Size: l.Size})
			entry.Layers = append(entry.Layers, "blobs/sha256/"+l.DiffID.Encoded())
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		md := digest.FromBytes(mb)
		if err := writeBlob(md, mb); err != nil {
			return err
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb))}
		if len(img.RepoTags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range img.RepoTags {
			ref, err := ParseReference(t)
			if err != nil {
				return err
			}
			tagged, ok := ref.(reference.NamedTagged)
			if !ok {
				return fmt.Errorf("%w: %q has no tag", ErrInvalidReference, t)
			}
			d := desc
			d.Annotations = map[string]string{AnnotationImageName: ref.String(), AnnotationRefName: tagged.Tag()}
			index.Manifests = append(index.Manifests, d)
			entry.RepoTags = append(entry.RepoTags, reference.FamiliarString(ref))
			repo := reference.FamiliarName(ref)
			if repositories[repo] == nil {
				repositories[repo] = map[string]string{}
			}
			if n := len(img.Layers); n > 0 {
				repositories[repo][tagged.Tag()] = img.Layers[n-1].DiffID.Encoded()
			}
		}
		manifestJSON = append(manifestJSON, entry)
	}
	for _, f := range []struct {
		name string
		v    any
	}{
		{"index.json", index},
		{"manifest.json", manifestJSON},
		{"oci-layout", ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
		{"repositories", repositories},
	} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := writeFile(tw, f.name, b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// SaveArchiveReader is SaveArchive as a stream to read from; an error ends
// the stream with that error.
func SaveArchiveReader(ctx context.Context, images []SaveImage) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(SaveArchive(ctx, pw, images))
	}()
	return pr
}

func writeFile(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

func writeLayer(tw *tar.Writer, l SaveLayer) (err error) {
	rc, err := l.Open()
	if err != nil {
		return fmt.Errorf("open layer %s: %w", l.DiffID, err)
	}
	defer func() {
		if cerr := rc.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close layer %s: %w", l.DiffID, cerr)
		}
	}()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "blobs/sha256/" + l.DiffID.Encoded(), Mode: 0o644, Size: l.Size, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	vr := VerifyReader(rc, l.DiffID, l.Size)
	// A longer stream fails in the tar writer (ErrWriteTooLong), a shorter
	// or different one in the verifying reader.
	if _, err := io.Copy(tw, vr); err != nil {
		return fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	return nil
}
