// Package testdata builds the images that fusebox's tests and benchmarks
// use, from Debian's packages, deterministically, and caches them.
//
// Every image is written by this package's own archive/tar code, not by
// fusebox's image package: a fixture that shared the code under test would
// agree with its bugs. Output is reproducible byte for byte — entries sorted,
// one fixed mtime, uid/gid from the spec and no user names, gzip without a
// timestamp, config times fixed — so image IDs and diff_ids can be asserted
// as constants. The busybox image (Busybox, BuildBusybox) has three layers
// that exercise what loaders and union filesystems get wrong: hard links,
// absolute and relative symlinks, a whiteout of a file and of a directory,
// and an opaque directory; it comes as a docker-archive, an OCI layout and
// archive, raw layer tars, overlayfs lower dirs, and a merged rootfs
// (BusyboxRootfs). The big image (Big) is the benchmarks' data set; the
// Debian image (Debian) is made by debootstrap and needs the network once.
//
// Builds live under CacheDir ($FUSEBOX_TESTCACHE, default testdata/cache),
// one directory per build named by a key over Version and the inputs (the
// busybox binary's sha256), so a changed input or builder is rebuilt rather
// than trusted. Concurrent test processes take an flock per build and build
// into a temporary directory that is renamed into place only when complete.
// Cached files are shared: tests must copy before they change anything.
package testdata
