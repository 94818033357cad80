// Package daemon is the fusebox daemon: it owns the store, serves the Docker
// Engine API on a unix socket, serves every FUSE mount and supervises every
// container.
//
// One daemon runs per root directory. It takes an exclusive lock on
// <root>/daemon.lock before it opens anything else, because Badger allows a
// single read-write process per directory and a FUSE mount must live as
// long as its container; a second daemon on the same root fails at once with
// [ErrRootLocked] instead of corrupting the first one's state. The daemon
// logs to <root>/daemon.log, which is also where a daemon started in the
// background by the CLI sends its output, so the log is the one place to
// look when the CLI reports that the daemon did not answer.
//
// The API is a subset of Docker's, advertised as version [APIVersion] (down
// to [MinAPIVersion]), with request and response types from
// github.com/moby/moby/api so that the real docker CLI and the official Go
// client both work against it. Routes are served both with a version prefix
// (/v1.44/images/json) and without. Each resource keeps its routes in a file
// of its own (system.go, images.go, later containers.go, networks.go), which
// adds them from an init function with [AddRoutes]; handlers return errors
// and [StatusOf] picks Docker's status code for them (404 for
// [ErrNotFound], 409 for [ErrConflict], 400 for [ErrBadParameter], and the
// store's sentinels mapped in store.go). Other parts of /info are added with
// [AddInfo]; the container routes tell rmi and prune which images are in
// use through [Daemon.ImageUsers].
//
// Images live in the store (package cas) under <root>/cas. Uploads (load)
// are spooled, decompressed, to <root>/tmp, which is emptied at start-up,
// because an archive has to be read out of order. A load ingests every
// layer under a lease before it writes any image record or tag, so a bad
// layer leaves the store as it was. Besides Docker's API the daemon serves
// two endpoints of its own, GET /fusebox/store/usage (space and what dedup
// saves) and POST /fusebox/store/fsck.
//
// The daemon serves every FUSE mount of an image ([Daemon.Mount]): a
// container's root file system, or an image mounted on the host with
// `fusebox mount` (GET, POST and DELETE /fusebox/mounts, GET
// /fusebox/mounts/changes). The layers come from the store through one
// layerfs.CASLayers, so each layer's file index is read once and every
// mount of an image shares one merged view. A mounted image's layers are
// held in the store (rmi refuses the image unless forced, and forced only
// untags it). Mounts show as type fuse.fusebox with the source
// "fusebox@<root>", by which a daemon starting on the root finds and
// unmounts what a dead predecessor left; the scratch upper dirs of
// `fusebox mount --rw` live in <root>/mounts and go with their mount.
//
// Containers get their network stacks from one network.Manager
// (networks.go), whose network records live in the store's "networks"
// bucket and whose CNI state lives under <root>/network. Create parses and
// checks every network option (mode, ports, addresses, hosts, links) and
// that fixed host ports are free, so bad input leaves no container; start
// sets up the sandbox before the shim and passes its netns path and the
// /etc/hosts and /etc/resolv.conf it computed; the supervisor tears the
// sandbox down when the container's process is gone, however it ended,
// before the exit is reported, so a returned `stop` or `wait` means no
// veth, rule or lease is left. Start-up tears down every leftover sandbox,
// because no container survives its daemon. Names on user networks resolve
// through hosts files that the daemon rewrites when members join or leave.
//
// Volumes (package volume) live in <root>/volumes, served by /volumes
// (volumes.go). A container's mounts (binds, volumes, tmpfs) are planned
// and made at create (container_mounts.go): the image is mounted read-only
// once to check each target against the image's symlinks and to seed new
// volumes, and the resulting mount points are kept in the container's
// state directory as mounts.json, from which start builds the runtime's
// mounts, inspect shows Mounts, and the volume store counts its users
// again when the daemon starts. The launcher mounts them inside the
// container's mount namespace, so the FUSE rootfs never sees them.
package daemon
