package launcher

import (
	"context"
	"errors"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Prefetch resolves, inside spec's root filesystem, the paths the
// container's init will resolve while it sets the container up: the mount
// points of spec's mounts, the working directory, and the command as the
// init's PATH lookup tries it. It returns when it has walked them all or
// ctx ends.
//
// A container's rootfs is a fresh FUSE mount whose kernel dentries are
// all cold, so each name the init resolves is a LOOKUP round trip to the
// daemon, in series, between the init's own steps (about twenty per
// start, up to a millisecond each on a loaded two-CPU machine). Run
// beside the shim's own start-up, which takes longer than the walk, the
// same lookups leave the kernel's cache answering the init. Nothing is
// opened but O_PATH descriptors, each closed at once, and every path is
// resolved with RESOLVE_IN_ROOT, so a symbolic link in the image can't
// lead outside the rootfs. Errors don't matter: a name that isn't there
// leaves a negative dentry, which is what the init will find too.
func Prefetch(ctx context.Context, spec *specs.Spec) {
	if spec == nil || spec.Root == nil || spec.Process == nil {
		return
	}
	root, err := unix.Open(spec.Root.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(root)
	for _, p := range prefetchPaths(spec) {
		if ctx.Err() != nil {
			return
		}
		fd, err := unix.Openat2(root, p, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == nil {
			unix.Close(fd)
		} else if errors.Is(err, unix.ENOSYS) {
			return // a kernel without openat2 has no FUSE rootfs worth it
		}
	}
}

// prefetchPaths lists what Prefetch resolves, in the order the init does:
// the mount points (libcontainer creates and checks each before it mounts
// it), the working directory, then the candidates of the command's PATH
// lookup up to the first one that is not a bare name.
func prefetchPaths(spec *specs.Spec) []string {
	var ps []string
	for _, m := range spec.Mounts {
		ps = append(ps, m.Destination)
	}
	if spec.Process.Cwd != "" {
		ps = append(ps, spec.Process.Cwd)
	}
	if len(spec.Process.Args) == 0 {
		return ps
	}
	cmd := spec.Process.Args[0]
	if strings.Contains(cmd, "/") {
		return append(ps, inDir(spec.Process.Cwd, cmd))
	}
	for _, dir := range strings.Split(envValue(spec.Process.Env, "PATH"), ":") {
		ps = append(ps, inDir(spec.Process.Cwd, path.Join(dir, cmd)))
	}
	return ps
}

// inDir is p as a process whose working directory is cwd resolves it.
func inDir(cwd, p string) string {
	if path.IsAbs(p) {
		return p
	}
	return path.Join("/", cwd, p)
}

// envValue is the value of name in env (KEY=VALUE entries, last one
// wins, as for a process), or "".
func envValue(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}
