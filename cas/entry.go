package cas

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// EntryType says what a layer entry is. Whiteouts and opaque markers are
// entries of their own, normalised from whatever format the layer came in
// (".wh.NAME" and ".wh..wh..opq" in tars, 0/0 character devices and
// trusted.overlay.opaque in overlayfs directories), so that a union
// filesystem never has to know the layer's original format.
type EntryType uint8

const (
	TypeRegular  EntryType = iota + 1 // a regular file; Digest names its bytes
	TypeDir                           // a directory
	TypeSymlink                       // a symbolic link; Linkname is its target
	TypeHardlink                      // a hard link to Linkname, a path in the same layer
	TypeChar                          // a character device
	TypeBlock                         // a block device
	TypeFifo                          // a named pipe
	TypeWhiteout                      // Path is deleted from the layers below
	TypeOpaque                        // the directory at Path hides everything below it
)

var entryTypeNames = [...]string{
	TypeRegular: "regular", TypeDir: "dir", TypeSymlink: "symlink",
	TypeHardlink: "hardlink", TypeChar: "char", TypeBlock: "block",
	TypeFifo: "fifo", TypeWhiteout: "whiteout", TypeOpaque: "opaque",
}

func (t EntryType) String() string {
	if int(t) < len(entryTypeNames) && entryTypeNames[t] != "" {
		return entryTypeNames[t]
	}
	return "unknown"
}

// Entry is one path of a layer's file index: everything a filesystem needs
// to serve the path without reading the layer tar again.
//
// A layer has at most one entry per (Path, Type is TypeOpaque) pair: a
// directory may have both its TypeDir entry and a TypeOpaque marker.
type Entry struct {
	// Path is slash-separated, relative to the layer root, cleaned, without
	// a leading slash; the root directory itself is ".".
	Path string
	Type EntryType
	// Mode holds the permission bits and setuid, setgid and sticky
	// (07777); the file type is in Type.
	Mode     uint32
	UID, GID uint32
	// Size is the size of a regular file's content.
	Size    int64
	ModTime time.Time
	Xattrs  map[string][]byte
	// Linkname is a symlink's target as written, or, for a hard link, the
	// Path of the entry it links to.
	Linkname           string
	Devmajor, Devminor uint32
	// Digest names a regular file's content (sha256 of its bytes).
	Digest digest.Digest
	// Inline is true when the content is kept in the metadata store rather
	// than in an object file (small files).
	Inline bool
}
