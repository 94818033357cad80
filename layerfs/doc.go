// Package layerfs is fusebox's union filesystem, served with FUSE (go-fuse
// v2): an ordered list of read-only layer sources, top first, merged into
// one tree, with an optional writable upper directory kept in kernel
// overlayfs's own on-disk format.
//
// # Mounting an image
//
// A layer is a Source: a list of cas.Entry values (whiteouts and opaque
// markers are entries of their own) and a way to open a regular file's
// content, as a file (for passthrough and splice) or as bytes held in
// memory. DirSource reads a plain directory in overlayfs's format (0/0
// character-device whiteouts, trusted.overlay.opaque or
// user.overlay.opaque set to "y", and the tar names ".wh.NAME" and
// ".wh..wh..opq"); CASSource is a thin adapter over a cas.Store's file
// index, handed out by a CASLayers (one per store) so that each layer's
// index is read once and shared by every image and mount that holds the
// layer. A CASSource opens object files read-only, for passthrough, and
// checks each object's digest on its first open (one sequential read of
// the file, once per process; an object big enough for passthrough is
// dropped from the page cache first, so that the check reads the disk and
// leaves the pages as a reader brings them in, not as the store's writer
// left them); a corrupt object is EIO and a log line, never wrong bytes.
// The caller passes the sources to Mount:
//
//	srv, err := layerfs.Mount(ctx, dir, layerfs.MountOptions{
//		Lowers:   []layerfs.Source{top, base},
//		UpperDir: upper, WorkDir: work, // both empty: read-only
//	})
//	...
//	defer srv.Unmount()
//
// NewRawFS builds the same file system without mounting it, for
// benchmarks of the request path without the kernel.
//
// # The merged view and what is cached
//
// The first Mount of a chain of sources reads every source's entries once
// (all the layers at once, a directory layer several directories at a
// time) and builds the merged view of the lower layers: one node per visible
// path, whiteouts and opaque directories applied, hard links sharing one
// node, each directory's names sorted. The view is kept in a process-wide
// cache keyed by the ordered source IDs and shared by every mount of the
// chain (ForgetChain drops it). Lower layers never change, so the view
// never goes stale: a lookup is one map probe per path component and a
// readdir of a lower directory reads no layer at all.
//
// The kernel caches too. Lower objects are answered with a one-hour entry,
// attribute and negative-entry timeout and opened with FOPEN_KEEP_CACHE, so
// their pages stay in the page cache across opens; that is safe because
// nothing below ever changes. Upper objects get one-second timeouts and no
// FOPEN_KEEP_CACHE. Every change to the upper dir goes through this mount,
// so the kernel updates or drops its entries itself; the short timeout
// only bounds how long a change made behind the mount's back (which is not
// supported) stays invisible. A directory that shows lower content only
// is opened with FOPEN_CACHE_DIR, so the kernel keeps its listing and a
// second readdir costs no round trip; any change to it comes through a
// request on it, after which the kernel drops the listing. While mounted,
// the upper and work directories are held open (O_PATH), as kernel
// overlayfs holds them, so walking to them never waits for the disk after
// the caches are dropped. Lower regular files of 128 KiB and more are
// opened with FUSE passthrough when the kernel grants it (CAP_PASSTHROUGH,
// root): reads then go straight to the layer's file without a round trip
// through this process; otherwise they are spliced from the file
// descriptor. Smaller lower files are opened in the kernel's caching mode
// and the layer's file only at the first READ: once their pages are
// cached, opening and reading one costs the OPEN and RELEASE requests and
// no system call here (passthrough would add two ioctls per open, and a
// GETATTR after every read, which invalidates the cached atime). Inline
// contents are served from memory. The kernel refuses to mix the two
// modes on one inode, so an open joins the mode of the opens still alive.
//
// # Inode numbers
//
// Lower nodes are numbered 1 (the root), 2, 3, ... depth-first in name
// order when the view is built, so the numbers are the same for every mount
// of a chain and across restarts. Hard links in a layer share one node and
// so one number. An object that exists only in the upper dir gets its upper
// inode number with bit 62 set, which keeps the two ranges apart. A file
// copied up keeps its lower number: copy-up stores it in the
// trusted.fusebox.origin xattr, which follows the file through renames and
// remounts. Readdir and readdirplus use the same numbers as lookup.
//
// # The upper directory
//
// Writes go to the upper dir exactly as kernel overlayfs would write them,
// so kernel overlayfs (with redirect_dir=on,metacopy=on) can mount the same
// upper dir and show the same tree. Copy-up happens on the first open for
// writing, with a reflink (FICLONE) where the file systems share extents,
// else copy_file_range, else a copy; opening with O_TRUNC copies no data.
// chmod, chown, utimes and xattr changes copy up metadata only: a sparse
// file of the same size marked trusted.overlay.metacopy, whose data stays
// in the lower layer until a write. Deleting a lower name leaves a 0/0
// character-device whiteout; a directory made where a lower one was deleted
// is marked opaque; renaming a lower directory copies it up empty and
// records trusted.overlay.redirect, so rename never fails with EXDEV.
// Objects are built under a temporary name in WorkDir/work and renamed into
// place. Changes of the tree's shape are serialized by one lock, which a
// data copy-up lets go of while it copies, so a 1 GiB copy-up does not
// stall lookups and other changes. Locks (flock and POSIX) are left to the kernel, which keeps them
// per open file and per process, as for a local file system.
//
// An inode has one passthrough backing file at a time, and the kernel
// requires every open of it to use that file. When a file opened through
// passthrough on its lower copy is copied up, its next open retires the
// kernel inode: it answers ESTALE, open(2) looks the name up again, and
// the new inode (same number, next generation) is served from the upper
// file. Opens made before the copy-up keep reading the lower file, as with
// kernel overlayfs.
//
// # The change journal
//
// A writable mount records every change in a Journal: the path is added,
// changed or deleted, with Docker's meanings (the parents of an added or
// deleted path are changed; a path added then deleted vanishes; a lower
// path deleted then made again is changed). The journal is an append-only
// text file, WorkDir/fusebox.journal by default, one "A /path" line per
// change, replayed by OpenJournal, so it survives a restart of the serving
// process; OpenJournal rewrites it as one line per change when it is
// mostly history. Journal.Changes lists the changes in O(changes). An added
// directory (made, or renamed into place) stands for its whole subtree.
//
// # Deadlocks to avoid
//
// The process that serves a mount must never fork and exec a child that
// touches the mount (a binary, a library, a working directory on it):
// while the kernel waits for the serving process to answer the child's
// request, the fork can hold locks the answer needs. Start such children
// from another process, or before mounting, as cmd/fusebox-overlay
// daemonizes before it mounts. Likewise, code in the serving process must
// not access the mount while holding a lock the file system's methods
// take. Unmount never hangs on open files: it detaches the mount and aborts
// the FUSE connection; requests on the files left open then fail with
// ENOTCONN (reads and writes of a passthrough file still reach its backing
// file, which the kernel holds).
package layerfs
