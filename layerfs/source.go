package layerfs

import (
	"context"
	"errors"
	"os"

	"github.com/fusebox/fusebox/cas"
)

// Sentinel errors; test them with errors.Is.
var (
	// ErrBadLayer reports a layer whose entries cannot be merged (a path
	// under a non-directory, a hard link to a missing path, ...).
	ErrBadLayer = errors.New("bad layer")
	// ErrBadOptions reports mount options that cannot work together.
	ErrBadOptions = errors.New("bad mount options")
	// ErrNotRegular is returned by Source.Open for an entry that has no
	// content.
	ErrNotRegular = errors.New("not a regular file")
)

// Source is one read-only image layer: an ordered list of entries and the
// content of its regular files. Sources never change once built, which is
// what makes caching their merged view safe.
//
// A CAS-backed source is a thin adapter: Entries returns the layer's file
// index, Open returns the object file (or the inline bytes) for an entry's
// digest.
type Source interface {
	// ID identifies the layer's content: two sources with the same ID
	// must list the same entries. The merged view of a chain of sources
	// is cached under the IDs of its sources.
	ID() string
	// Entries lists the layer, whiteouts and opaque markers included as
	// entries of their own (cas.TypeWhiteout, cas.TypeOpaque).
	Entries(ctx context.Context) ([]cas.Entry, error)
	// Open returns the content of a regular-file entry that Entries
	// returned.
	Open(ctx context.Context, e *cas.Entry) (Content, error)
}

// Content is a regular file's bytes: either a file to read (and to hand to
// the kernel for FUSE passthrough) or, for small files kept in memory,
// the bytes themselves. Exactly one of File and Data is set; the receiver
// closes File.
type Content struct {
	File *os.File
	Data []byte
}
