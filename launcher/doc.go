// Package launcher runs a container from a mounted rootfs: it turns what
// `docker run` options mean into an OCI runtime spec with Docker's defaults,
// and it runs that spec in a shim, a separate process per container that
// embeds runc's libcontainer.
//
// The split into two processes is the point of the package (DESIGN.md,
// decision 2). The daemon serves the container's rootfs over FUSE, and a Go
// process that serves FUSE must never fork a child whose chdir or exec lands
// on its own mount: the child blocks on FUSE while the parent's runtime is
// stopped for a garbage collection, and both hang in D state. So the daemon
// calls [Start], which runs the shim binary ([DefaultExe]: fusebox-shim next
// to fusebox, a small binary of this package alone, or else the fusebox
// binary itself) as `<exe> shim` with
// its working directory in the container's state directory (never on FUSE)
// and in a session of its own. The shim creates the container with
// libcontainer (cgroups under /fusebox/<id>), becomes its parent, holds its
// pty or pipes, writes its output to a log in Docker's json-file format, and
// answers the daemon over a unix socket in the state directory: attach,
// resize, signal, pause, resume, processes, stats, exec, wait. The daemon
// holds nothing but a [Shim] handle, so it can restart and [Connect] again.
//
// The life of a container, seen from the daemon:
//
//  1. build a spec with [BuildSpec] from [Options] (after resolving the user
//     with [ResolveUser] against the mounted rootfs);
//  2. [Start] the shim: when it returns, the container exists in the created
//     state, its init process waits before exec'ing the command, and a
//     command that can't be found or run has already failed with an error
//     carrying Docker's exit code (127 or 126, see [ExitCode]). Start hands
//     the container to a spare shim started after the previous Start
//     (`<exe> shim -`, waiting for its state directory on a pipe), so a
//     start does not wait for a process to exec and the Go runtime to come
//     up; a spare whose daemon goes away reads end of file and exits;
//  3. [Shim.Attach] the streams the client asked for, then [Shim.Begin] so
//     that the command runs and no output is missed;
//  4. [Shim.Wait] returns the exit code (128+N for a signal) and finish time,
//     after the shim has destroyed the container and removed its cgroups, so
//     the daemon may unmount the rootfs as soon as Wait returns. The shim
//     also records the status in the state directory ([ReadExitStatus]) for
//     a daemon that was not there to see it.
//
// A daemon that restarts finds a running shim again with [Connect]; since a
// container can't outlive the FUSE mount of the daemon that served it,
// [Cleanup] kills what is left of a container (through its shim, or by its
// cgroups when the shim is gone) and leaves only its log and exit status.
// The log is read with [ReadLogs].
//
// Seccomp: [BuildSpec] puts Docker's default profile (from
// github.com/moby/profiles/seccomp, filtered by the container's
// capabilities) or the profile Options.Seccomp names into the spec. Each
// of the container's processes loads it before it drops its capabilities
// and execs the command. libcontainer would compile the profile with
// libseccomp in each of them, about 30 ms of every start here; instead the
// daemon compiles each profile once, through libcontainer in a child, reads
// the program back from the kernel, and the shim hands it to each process
// to load where libcontainer would have loaded its own (filter.go says
// how, and when libcontainer keeps the job). Loading a filter takes a
// binary built with cgo and the `seccomp` tag (Debian's libseccomp-dev):
// `make` sets GOFLAGS=-tags=seccomp. A shim built without it drops the
// profile and says so in its log ([SeccompSupported]), as Docker runs
// containers unconfined on a host without seccomp, rather than failing to
// start them.
package launcher
