// Package commit turns a container's recorded changes into what `docker
// diff` shows, into a layer, and into a new image, at a cost that follows
// the change and not the image.
//
// It never mounts anything. The daemon hands it a Mount, plain data taken
// from the container's layerfs mount: the directory where the merged view
// is mounted, the upper dir (in kernel overlayfs's format) and the change
// journal's list (layerfs.Journal.Changes, O(changes)).
//
// # Diff
//
// Changes puts a list in Docker's order and meaning: sorted by path, the
// parents of changed paths shown "C", nothing under a deleted directory,
// and everything under an added directory added. Diff adds the contents of
// added directories, because the journal records a directory renamed into
// place as one path while Docker lists its whole subtree. For a running
// container they are read from the merged view. For a stopped one (Mount
// without Merged) nothing is mounted: they are read from the upper dir,
// where a new directory holds all of its contents, and only a directory
// renamed from the image (trusted.overlay.redirect) needs the image's
// part, which IndexLower lists from the lower layers' file indexes in the
// store (whiteouts, opaque directories and files over directories
// applied). So a diff costs the changes whatever the image's size.
// APIChanges is the Engine API's form (Kind 0 = C, 1 = A, 2 = D), Format
// the CLI's.
//
// # The layer
//
// WriteLayer writes the layer tar: entries sorted, so the same changes give
// the same bytes; deleted paths as ".wh.NAME"; a directory that hides the
// one below (made again after a delete: trusted.overlay.opaque; renamed:
// trusted.overlay.redirect) as ".wh..wh..opq" followed by its whole
// subtree; added directories with their whole subtree; a lower file whose
// metadata alone changed (a metacopy file in the upper dir) with its full
// bytes, read through the merged view, since a layer must carry them; hard
// links as tar hard links to the first name; symlinks, devices and fifos as
// themselves; xattrs as PAX SCHILY.xattr records; times in whole seconds
// and no user names, as Docker writes layers. Sockets are left out, as
// Docker leaves them out; any other kind of file, or a name that would read
// as a whiteout, is an error (ErrUnstorable), never skipped. Metadata and
// bytes are read from the upper dir where it holds the object (the merged
// view shows exactly that object there), else through the merged view.
//
// IngestLayer streams that tar through an io.Pipe into cas.IngestLayer,
// which hashes it as it reads: no layer is held in memory or spooled.
//
// # No second copy
//
// A commit must not cost a second copy of a large new file. IngestLayer
// offers each upper file to the store (cas.IngestOptions.Files). For a
// stopped container (Request.Adopt) the store adopts the file: it links
// the upper file's inode in as the object (after checking its bytes
// against the tar's) and marks it cas.XattrShared, so the commit takes no
// new data blocks on any file system that has hard links; the upper dir and
// the store must share a file system, else (EXDEV) the store falls back to
// a reflink, then a copy. The store's objects are immutable and the
// container's file is not, so layerfs copies a shared upper file before it
// writes, truncates or hard-links it (copy-before-write; chmod, chown and
// times need no copy, the store never reads an object file's metadata).
// Removing the image unlinks the object's name only; the container's file
// stays. A running container is not adopted from, since a process may
// hold the file open for writing: there the store reflinks the file where
// the file system shares extents (XFS, Btrfs), else writes the bytes once
// more.
//
// # The image
//
// Commit builds the config from the parent image's, with the container's
// config carried over (ConfigFromContainer converts the API's
// container.Config) and the --change instructions applied
// (image.ApplyChanges); rootfs.diff_ids gains the layer, and history an
// entry whose created_by is the container's Cmd joined by spaces, with the
// comment, the author and the time. A commit of no changes still makes a
// new image; as Docker does, its history entry is an empty_layer and no
// diff_id is added. The image record names the parent, so `history` shows
// local IDs, and the layer's content size (12 B for the walkthrough's
// hello.txt) is what `history` shows as SIZE. The reference and the
// --change lines are checked before anything is written, and a lease keeps
// the new layer until the image holds it, so a failed commit leaves the
// store as it was.
package commit
