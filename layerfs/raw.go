package layerfs

import (
	"context"
	"fmt"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// RawFS is the file system a Mount of the same options would serve,
// answering the FUSE protocol's requests (Lookup, GetAttr, ReadDirPlus,
// Open, Read, ...) directly, with no kernel and no mount. It exists for
// benchmarks and tests of the hot path: what a request costs inside
// fusebox, apart from the kernel's round trip. Node IDs are those go-fuse
// hands out; the root is 1. There is no passthrough without a kernel, so
// reads of object files go through the process (pread).
type RawFS struct {
	fuse.RawFileSystem
	fsys *layerFS
}

// NewRawFS builds the union of opts.Lowers (and opts.UpperDir) like Mount,
// sharing the merged-view cache, without mounting it. Close it to close
// the journal of a writable one.
func NewRawFS(ctx context.Context, opts MountOptions) (*RawFS, error) {
	if len(opts.Lowers) == 0 {
		return nil, fmt.Errorf("raw fs: %w: no lower layers", ErrBadOptions)
	}
	if (opts.UpperDir == "") != (opts.WorkDir == "") {
		return nil, fmt.Errorf("raw fs: %w: upperdir and workdir go together", ErrBadOptions)
	}
	l, root, err := newFS(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("raw fs: %w", err)
	}
	to := l.lowerTimeout
	if l.upper != "" {
		to = l.upperTimeout
	}
	raw := fs.NewNodeFS(root, &fs.Options{
		EntryTimeout:    &to,
		AttrTimeout:     &to,
		NegativeTimeout: &to,
		RootStableAttr:  &fs.StableAttr{Ino: 1},
		NullPermissions: true,
		Logger:          opts.Logger,
	})
	return &RawFS{RawFileSystem: raw, fsys: l}, nil
}

// Close closes the journal of a writable RawFS.
func (r *RawFS) Close() error { return r.fsys.journal.Close() }
