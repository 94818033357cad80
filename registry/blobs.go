package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fusebox/fusebox/cas"
)

// blobBucket keeps, per diff_id, the compressed blobs registries are known
// to hold for that layer (like Docker's v2 metadata): a push checks these
// with HEAD before it compresses anything. Entries are facts about content
// (this gzip stream decompresses to that tar), so they never go stale in a
// harmful way; a registry that no longer has the blob answers 404.
const blobBucket = "registry"

func blobKey(diffID digest.Digest) string { return "blob/" + diffID.String() }

// knownBlob is a compressed blob of a layer and the repositories
// ("host/path") it was pulled from or pushed to.
type knownBlob struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	Repos     []string      `json:"repos,omitempty"`
}

func (k knownBlob) descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: k.MediaType, Digest: k.Digest, Size: k.Size}
}

// knownBlobs returns the recorded compressed blobs of a layer.
func knownBlobs(ctx context.Context, store *cas.Store, diffID digest.Digest) []knownBlob {
	b, err := store.Bucket(blobBucket).Get(ctx, blobKey(diffID))
	if err != nil {
		return nil
	}
	var ks []knownBlob
	if json.Unmarshal(b, &ks) != nil {
		return nil
	}
	return ks
}

// rememberBlobs records that each layer's compressed blob is the
// manifest's descriptor, held by repo. Errors are ignored: this is a cache.
func rememberBlobs(ctx context.Context, store *cas.Store, layers []ocispec.Descriptor, diffIDs []digest.Digest, repo string) {
	for i, l := range layers {
		if i >= len(diffIDs) {
			return
		}
		rememberBlob(ctx, store, diffIDs[i], l, repo)
	}
}

func rememberBlob(ctx context.Context, store *cas.Store, diffID digest.Digest, l ocispec.Descriptor, repo string) {
	ks := knownBlobs(ctx, store, diffID)
	i := slices.IndexFunc(ks, func(k knownBlob) bool { return k.Digest == l.Digest })
	if i < 0 {
		ks = append(ks, knownBlob{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
		i = len(ks) - 1
	}
	if slices.Contains(ks[i].Repos, repo) {
		return
	}
	ks[i].Repos = append(ks[i].Repos, repo)
	if n := len(ks[i].Repos); n > 8 {
		ks[i].Repos = ks[i].Repos[n-8:]
	}
	if len(ks) > 8 {
		ks = ks[len(ks)-8:]
	}
	if b, err := json.Marshal(ks); err == nil {
		_ = store.Bucket(blobBucket).Put(ctx, blobKey(diffID), b)
	}
}

func decodeJSON(r io.Reader, v any) error {
	if err := json.NewDecoder(io.LimitReader(r, maxManifest)).Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
