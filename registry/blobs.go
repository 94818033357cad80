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

// knownBlobs returns the recorded compressed blobs of a layer.
func knownBlobs(ctx context.Context, store *cas.Store, diffID digest.Digest) []ocispec.Descriptor {
	b, err := store.Bucket(blobBucket).Get(ctx, blobKey(diffID))
	if err != nil {
		return nil
	}
	var ds []ocispec.Descriptor
	if json.Unmarshal(b, &ds) != nil {
		return nil
	}
	return ds
}

// rememberBlobs records that each layer's compressed blob is desc. Errors
// are ignored: this is a cache.
func rememberBlobs(ctx context.Context, store *cas.Store, layers []ocispec.Descriptor, diffIDs []digest.Digest) {
	for i, l := range layers {
		if i >= len(diffIDs) {
			return
		}
		rememberBlob(ctx, store, diffIDs[i], l)
	}
}

func rememberBlob(ctx context.Context, store *cas.Store, diffID digest.Digest, l ocispec.Descriptor) {
	ds := knownBlobs(ctx, store, diffID)
	if slices.ContainsFunc(ds, func(d ocispec.Descriptor) bool { return d.Digest == l.Digest }) {
		return
	}
	ds = append(ds, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
	if len(ds) > 8 {
		ds = ds[len(ds)-8:]
	}
	if b, err := json.Marshal(ds); err == nil {
		_ = store.Bucket(blobBucket).Put(ctx, blobKey(diffID), b)
	}
}

func decodeJSON(r io.Reader, v any) error {
	if err := json.NewDecoder(io.LimitReader(r, maxManifest)).Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
