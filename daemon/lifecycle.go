package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/launcher"
)

// recoverContainer settles a container the previous daemon left running.
// Its rootfs was a FUSE mount served by that daemon, so whatever still runs
// is cut off from its files: the shim (if alive) is told to kill it, any
// process left in its cgroups is killed, the dead mount is detached, the
// cgroups and the shim's runtime files are removed, and the record says
// exited. The writable layer (upper, work, journal) is kept whole, so that
// a start mounts it again with every file the container wrote.
func (d *Daemon) recoverContainer(ctx context.Context, c *ctr) error {
	rec := c.snapshot()
	switch rec.State.Status {
	case container.StateRunning, container.StatePaused, container.StateRestarting, container.StateRemoving, container.StateDead:
	default:
		// A start records "running" only once the command was let go;
		// a daemon that died during a start left a shim, a mount or
		// runtime files under a record that still says created or
		// exited.
		if startLeftovers(c.dir) {
			break
		}
		if rec.HostConfig.AutoRemove && rec.State.Status == container.StateExited {
			return d.RemoveContainer(ctx, c, true)
		}
		return nil
	}
	d.log.Info("cleaning up after container of the previous daemon", "id", rec.ID, "status", rec.State.Status)
	exit := launcher.ExitStatus{ExitCode: 128 + int(syscall.SIGKILL), Finished: time.Now().UTC()}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	sdir, _ := d.shimDir(c)
	if shim, err := launcher.Connect(cctx, sdir); err == nil {
		_ = shim.Signal(cctx, syscall.SIGKILL)
		if st, err := shim.Wait(cctx); err == nil {
			exit = st
		}
	} else if st, err := launcher.ReadExitStatus(c.dir); err == nil && !st.Finished.Before(rec.State.StartedAt) {
		exit = st
	}
	cancel()
	killShim(c.dir)
	cleanupCgroups(rec.ID)
	unmountStale(filepath.Join(c.dir, "merged"))
	for _, name := range []string{"runc", launcher.SocketFile, launcher.PidFile, launcher.ConfigFile} {
		_ = os.RemoveAll(filepath.Join(c.dir, name))
	}
	c.mu.Lock()
	removing := c.rec.State.Status == container.StateRemoving || c.rec.State.Status == container.StateDead
	c.rec.State.Status = container.StateExited
	c.rec.State.Pid = 0
	c.rec.State.ExitCode = exit.ExitCode
	c.rec.State.FinishedAt = exit.Finished
	c.mu.Unlock()
	if removing || rec.HostConfig.AutoRemove {
		return d.RemoveContainer(ctx, c, true)
	}
	return d.containers.save(ctx, c)
}

// startLeftovers reports whether a container's directory holds what a
// start leaves while it runs: the shim's pid file, socket, config or
// libcontainer state, or a mount on the rootfs.
func startLeftovers(dir string) bool {
	for _, name := range []string{"runc", launcher.SocketFile, launcher.PidFile, launcher.ConfigFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return mountedAt(filepath.Join(dir, "merged"))
}

// mountedAt reports whether dir is a mount point; a FUSE mount whose
// server is gone counts (its stat fails with ENOTCONN).
func mountedAt(dir string) bool {
	var st, pst unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return errors.Is(err, unix.ENOTCONN)
	}
	if err := unix.Lstat(filepath.Dir(dir), &pst); err != nil {
		return false
	}
	return st.Dev != pst.Dev
}

// killShim kills a shim that no longer answers on its socket but whose
// pid file says it runs.
func killShim(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, launcher.PidFile))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if !strings.Contains(string(cmdline), "shim") {
		return // the pid was reused by something else
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// cleanupCgroups kills what is left in a container's cgroups and removes
// them, on every cgroup v1 hierarchy and on the v2 tree.
func cleanupCgroups(id string) {
	rel := strings.TrimPrefix(launcher.CgroupPath(id), "/")
	var dirs []string
	if ents, err := os.ReadDir("/sys/fs/cgroup"); err == nil {
		for _, e := range ents {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", e.Name(), rel))
		}
	}
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", rel))
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		// A frozen cgroup's processes can't die until thawed.
		_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0o644)
		for range 50 {
			b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			pids := strings.Fields(string(b))
			if err != nil || len(pids) == 0 {
				break
			}
			for _, p := range pids {
				if n, err := strconv.Atoi(p); err == nil {
					_ = syscall.Kill(n, syscall.SIGKILL)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = os.Remove(dir)
	}
}

// shutdownContainers stops every running container when the daemon shuts
// down (each with its stop signal, at most 10 s before SIGKILL), because a
// container can't outlive the daemon that serves its rootfs.
func (d *Daemon) shutdownContainers() error {
	var wg sync.WaitGroup
	for _, c := range d.containers.all() {
		if !c.running() {
			continue
		}
		rec := c.snapshot()
		sig := syscall.SIGTERM
		if rec.Config.StopSignal != "" {
			if s, err := parseSignalName(rec.Config.StopSignal); err == nil {
				sig = s
			}
		}
		timeout := defaultStopTimeout * time.Second
		if rec.Config.StopTimeout != nil && *rec.Config.StopTimeout >= 0 && *rec.Config.StopTimeout < defaultStopTimeout {
			timeout = time.Duration(*rec.Config.StopTimeout) * time.Second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout+15*time.Second)
			defer cancel()
			if err := c.lock(ctx); err != nil {
				return
			}
			defer c.unlock()
			// A daemon shutdown is not a user's stop: "unless-stopped"
			// containers start again with the next daemon.
			c.mu.Lock()
			manual := c.rec.ManuallyStopped
			c.mu.Unlock()
			if err := d.stop(ctx, c, sig, timeout); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				d.log.Warn("stop container at shutdown", "id", rec.ID, "err", err)
			}
			c.mu.Lock()
			c.rec.ManuallyStopped = manual
			c.mu.Unlock()
			_ = d.containers.save(ctx, c)
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { d.containers.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
	}
	// Every container is stopped: their short links go with the daemon.
	_ = os.RemoveAll(filepath.Dir(d.shimLink(strings.Repeat("0", 12))))
	return nil
}

// shimRunDir holds short links to container state directories, one
// directory per daemon root.
const shimRunDir = "/run/fusebox"

// maxSocketPath is the longest unix socket path the kernel binds.
const maxSocketPath = 107

// shimDir is the path the shim gets for a container's state directory.
// The shim's control socket lives there, and a unix socket path can't
// exceed 107 bytes, which a deep root makes <root>/containers/<id>/shim.sock
// do; then the shim gets a short link to the state directory instead,
// /run/fusebox/<root hash>/<short id>, as containerd does with its /run
// paths.
func (d *Daemon) shimDir(c *ctr) (string, error) {
	link := d.shimStateDir(c.rec.ID, c.dir)
	if link == c.dir {
		return c.dir, nil
	}
	if cur, err := os.Readlink(link); err == nil && cur == c.dir {
		return link, nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		return "", fmt.Errorf("create shim link dir: %w", err)
	}
	_ = os.Remove(link)
	if err := os.Symlink(c.dir, link); err != nil {
		return "", fmt.Errorf("link shim state dir: %w", err)
	}
	return link, nil
}

// shimStateDir is the path by which the shim of the container id, whose
// directory is dir, is reached: dir, or the link shimDir makes when
// dir's socket path would be too long.
func (d *Daemon) shimStateDir(id, dir string) string {
	if len(filepath.Join(dir, launcher.SocketFile)) <= maxSocketPath {
		return dir
	}
	return d.shimLink(id)
}

func (d *Daemon) shimLink(id string) string {
	sum := sha256.Sum256([]byte(d.root))
	return filepath.Join(shimRunDir, hex.EncodeToString(sum[:4]), id[:12])
}
