// Package usage holds the store's accounting (fusebox system df) and its
// fsck report as plain types: the daemon answers with them and the CLI
// decodes them, without linking the store itself.
package usage

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Usage is the store's space accounting (fusebox system df).
type Usage struct {
	// ObjectBytes and ObjectFiles: the content held in object files.
	ObjectBytes int64
	ObjectFiles int
	// InlineBytes and InlineObjects: the content held in Badger.
	InlineBytes   int64
	InlineObjects int
	// LogicalBytes is the sum of every layer's content size: what the
	// layers would take with no sharing at all.
	LogicalBytes int64
	// SavedBytes is what deduplication saves: LogicalBytes minus the
	// content actually stored.
	SavedBytes int64
	// MetadataBytes is the size of the Badger database on disk.
	MetadataBytes int64
	Layers        int
	Images        []ImageUsage
}

// ImageUsage is one image's size.
type ImageUsage struct {
	ID digest.Digest
	// Size is the sum of its layers' content sizes (each layer once), the
	// uncompressed size Docker shows.
	Size int64
	// SharedSize is the part of Size in layers other images use too.
	SharedSize int64
}

// Problem is one thing Fsck found wrong.
type Problem struct {
	// Kind: "corrupt object", "missing object", "size mismatch",
	// "missing index", "bad record".
	Kind   string
	Digest digest.Digest // the object or layer concerned
	Detail string
}

func (p Problem) String() string { return fmt.Sprintf("%s %s: %s", p.Kind, p.Digest, p.Detail) }

// Report is what Fsck checked and found.
type Report struct {
	Objects  int // contents re-hashed
	Layers   int // layer indexes read
	Entries  int // index entries checked
	Problems []Problem
}

// OK is true when Fsck found nothing wrong.
func (r Report) OK() bool { return len(r.Problems) == 0 }
