package cas

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
)

// The store's abilities as one-method interfaces, so that a package needing
// one of them (layerfs reads indexes and contents, commit ingests, inspect
// only reads) depends on that and can be given any implementation.

// LayerIngester stores layers.
type LayerIngester interface {
	IngestLayer(ctx context.Context, r io.Reader, opts IngestOptions) (LayerInfo, error)
}

// IndexProvider gives a layer's file index.
type IndexProvider interface {
	Entries(ctx context.Context, diffID digest.Digest) ([]Entry, error)
}

// ContentProvider opens a stored file content.
type ContentProvider interface {
	OpenContent(ctx context.Context, d digest.Digest) (io.ReadCloser, error)
}

// ObjectPather names the file holding a content, when there is one.
type ObjectPather interface {
	ObjectPath(d digest.Digest) (string, bool)
}

// InlineReader reads a content kept inline.
type InlineReader interface {
	ReadInline(ctx context.Context, d digest.Digest) ([]byte, error)
}

// LayerTarProvider rebuilds a layer's original tar.
type LayerTarProvider interface {
	LayerTar(ctx context.Context, diffID digest.Digest) (io.ReadCloser, error)
}

var (
	_ LayerIngester    = (*Store)(nil)
	_ IndexProvider    = (*Store)(nil)
	_ ContentProvider  = (*Store)(nil)
	_ ObjectPather     = (*Store)(nil)
	_ InlineReader     = (*Store)(nil)
	_ LayerTarProvider = (*Store)(nil)
)
