package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the manifests and layers fusebox reads and writes.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerForeign      = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeSchema1            = "application/vnd.docker.distribution.manifest.v1"
)

// maxManifest bounds a manifest or config read into memory.
const maxManifest = 8 << 20

var manifestAccept = strings.Join([]string{
	MediaTypeDockerManifest, MediaTypeDockerManifestList, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
}, ", ")

// manifest is the part of a Docker v2 schema 2 or OCI manifest, or of a
// manifest list or OCI index, that a pull reads.
type manifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType,omitempty"`
	Config        ocispec.Descriptor   `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
}

func (m *manifest) isIndex(contentType string) bool {
	switch {
	case contentType == MediaTypeDockerManifestList, contentType == ocispec.MediaTypeImageIndex,
		m.MediaType == MediaTypeDockerManifestList, m.MediaType == ocispec.MediaTypeImageIndex:
		return true
	}
	return len(m.Manifests) > 0 && len(m.Layers) == 0 && m.Config.Digest == ""
}

// getManifest fetches a manifest by tag or digest; a digest reference is
// verified against the bytes.
func (s *session) getManifest(ctx context.Context, tagOrDigest string) ([]byte, string, digest.Digest, error) {
	resp, err := s.do(ctx, http.MethodGet, s.url("/manifests/"+tagOrDigest), nil, http.Header{"Accept": {manifestAccept}}, http.StatusOK)
	if err != nil {
		return nil, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return nil, "", "", fmt.Errorf("read manifest %s: %w", tagOrDigest, err)
	}
	if len(b) > maxManifest {
		return nil, "", "", fmt.Errorf("manifest %s: larger than %d bytes: %w", tagOrDigest, maxManifest, ErrUnsupported)
	}
	d := digest.FromBytes(b)
	if want, err := digest.Parse(tagOrDigest); err == nil && want != d {
		return nil, "", "", fmt.Errorf("manifest %s: got %s: %w", want, d, ErrDigestMismatch)
	}
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return b, strings.TrimSpace(ct), d, nil
}

// ErrDigestMismatch: a manifest or config whose bytes are not the digest
// that named them (layers report cas.ErrDigestMismatch).
var ErrDigestMismatch = fmt.Errorf("digest mismatch")

// getBlob fetches a small blob (a config) and verifies it.
func (s *session) getBlob(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	if d.Size > maxManifest {
		return nil, fmt.Errorf("blob %s: %d bytes is too large: %w", d.Digest, d.Size, ErrUnsupported)
	}
	resp, err := s.do(ctx, http.MethodGet, s.url("/blobs/"+d.Digest.String()), nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d.Digest, err)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		return nil, fmt.Errorf("blob %s: got %s: %w", d.Digest, got, ErrDigestMismatch)
	}
	return b, nil
}

// pickPlatform chooses a manifest of an index for the platform: same OS
// and architecture, and the same variant when one is asked for (a variant
// match wins over none).
func pickPlatform(ms []ocispec.Descriptor, want ocispec.Platform) (ocispec.Descriptor, bool) {
	var fallback *ocispec.Descriptor
	for i, m := range ms {
		p := m.Platform
		if p == nil || p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		if want.Variant == "" || p.Variant == want.Variant {
			return m, true
		}
		if fallback == nil && p.Variant == "" {
			fallback = &ms[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return ocispec.Descriptor{}, false
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// resolve fetches the image manifest a tag or digest names, choosing the
// platform's entry of a list or index. It returns the manifest bytes and
// digest the reference resolved to (the list's, as Docker records it: that
// is the digest a user can pull again by) and the image manifest itself.
func (s *session) resolve(ctx context.Context, tagOrDigest string, platform ocispec.Platform) (refDigest digest.Digest, img *manifest, imgBytes []byte, err error) {
	b, ct, d, err := s.getManifest(ctx, tagOrDigest)
	if err != nil {
		return "", nil, nil, err
	}
	if strings.HasPrefix(ct, mediaTypeSchema1) {
		return "", nil, nil, fmt.Errorf("%s: schema 1 manifests: %w", tagOrDigest, ErrUnsupported)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return "", nil, nil, fmt.Errorf("manifest %s: %w", tagOrDigest, err)
	}
	if m.SchemaVersion == 1 {
		return "", nil, nil, fmt.Errorf("%s: schema 1 manifests: %w", tagOrDigest, ErrUnsupported)
	}
	refDigest = d
	if m.isIndex(ct) {
		choice, ok := pickPlatform(m.Manifests, platform)
		if !ok {
			return "", nil, nil, fmt.Errorf("no matching manifest for %s in the manifest list entries: %w", platformString(platform), ErrNotFound)
		}
		if b, ct, _, err = s.getManifest(ctx, choice.Digest.String()); err != nil {
			return "", nil, nil, err
		}
		m = manifest{}
		if err := json.Unmarshal(b, &m); err != nil {
			return "", nil, nil, fmt.Errorf("manifest %s: %w", choice.Digest, err)
		}
		if m.isIndex(ct) {
			return "", nil, nil, fmt.Errorf("manifest %s: nested index: %w", choice.Digest, ErrUnsupported)
		}
	}
	if m.Config.Digest == "" {
		return "", nil, nil, fmt.Errorf("manifest %s: no config: %w", tagOrDigest, ErrUnsupported)
	}
	for _, l := range m.Layers {
		if l.MediaType == mediaTypeDockerForeign || strings.Contains(l.MediaType, "nondistributable") {
			return "", nil, nil, fmt.Errorf("layer %s: foreign layers: %w", l.Digest, ErrUnsupported)
		}
		if err := l.Digest.Validate(); err != nil {
			return "", nil, nil, fmt.Errorf("layer digest %q: %w", l.Digest, err)
		}
	}
	return refDigest, &m, b, nil
}
