// Package volume owns named volumes and the mount points containers get:
// Docker's "local" volume driver and the parsing of -v, --mount and --tmpfs.
//
// A volume is a directory under the daemon's root, <dir>/<name>/_data, with
// its metadata (driver, labels, options, creation time) beside it in
// <dir>/<name>/volume.json, one small file per volume, so that a volume and
// its record appear and disappear together: Create builds both in a
// temporary directory and renames it into place, Remove renames it aside
// before deleting it, and Open clears what a crash left half-done. The
// Badger store is not involved, which keeps the package free of the store
// and lets an operator read a volume's record with cat.
//
// Reference counting is in memory: the daemon tells the Store which
// containers use which volumes (Acquire at container create, Release at
// container remove, Ref again at daemon start-up from each container's
// recorded mount points). Remove refuses a volume that a container uses,
// with Docker's "volume is in use" text.
//
// Volumes are mounted inside the container's mount namespace, on top of
// the FUSE rootfs, by the launcher; the union filesystem never sees what a
// container writes into them, so diff, commit and export leave them out,
// as Docker's do. The one time the volume meets the image is seeding: a
// new, empty volume gets a copy of what the image holds at the mount
// target (Seed with CopyTree), with modes, owners, symlinks, device nodes,
// hard links, times and extended attributes kept. Mount targets are found
// inside the rootfs with Resolve, which treats absolute symlinks as rooted
// at the rootfs and refuses relative ones that climb out of it.
package volume
