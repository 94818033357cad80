// Package bench measures fusebox's layer I/O side by side with its anchors,
// kernel overlayfs (the physical limit of a union mount) and Debian's
// fuse-overlayfs (the FUSE peer), on the same data, in the same run, with
// caches handled the same way for every backend. Product code never imports
// it; `fusebox bench` and `make bench` drive it.
//
// A run goes like this. PrepareDataset builds, once, a deterministic layered
// data set in overlayfs's on-disk format (a busybox base, a tree of small
// files, two incompressible files, a layer of rewrites and 0/0 whiteouts, a
// small top layer) and keeps it in a cache directory, marked complete only
// after it is whole. Each Backend presents those layers as one directory:
// a merged native copy, kernel overlayfs, fuse-overlayfs and fusebox-overlay
// (both as FUSE programs with fuse-overlayfs's command line) and fusebox's
// image mount through its CLI. Cold and writing workloads run on a fresh
// mount (fresh upper directory) per measured run, right after
// `sync; echo 3 > /proc/sys/vm/drop_caches`; warm read-only workloads run on
// one mount after one unmeasured pass. Figures that are not one workload on
// one mount (container start against runc, diff and commit against a naive
// tree walk, daemon memory) are Cases of their own. A backend or figure that
// cannot be measured yet is reported with ErrMissing and the reason, never
// skipped. Everything that needs the fusebox daemon (image mounts,
// containers, diff, commit, memory) goes to a daemon the harness starts for
// itself from the same binary, on a root and socket under its scratch
// directory (Server, StartDaemon): the machine's daemon and store are never
// touched, and the memory figures read the daemon's and its shims' /proc. Every figure is the median of the runs, with min and max, and its
// speed ratio to each anchor (above 1 is better than the anchor); the Report
// is written as markdown, JSON (for Compare across commits) and a PNG plot.
//
// Every mount is undone when its run ends, the harness's daemon is stopped
// (SIGTERM: it stops its containers and unmounts what it serves), and Run
// sweeps its scratch directory for leftovers when it returns, also after an
// error or a cancelled context (Ctrl-C in `fusebox bench`).
package bench
