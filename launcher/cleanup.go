package launcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// Cleanup makes sure nothing of container id runs or remains but its log
// and exit status, whatever state its shim is in: a live shim is told to
// kill the container and waited for (it destroys the container itself);
// without one (the shim was killed), Cleanup kills the processes left in
// the container's cgroups, removes the cgroups and the runtime files. A
// daemon calls it at start-up for containers whose FUSE mounts died with
// the previous daemon. It returns the exit status, recording "the shim was
// lost" with exit code 137 when the shim recorded none.
//
// Cleanup runs no libcontainer code, so it is safe inside the daemon.
func Cleanup(ctx context.Context, stateDir, id string) (ExitStatus, error) {
	if s, err := Connect(ctx, stateDir); err == nil {
		if err := s.Signal(ctx, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) && !errors.Is(err, ErrShimGone) {
			return ExitStatus{}, err
		}
		st, err := s.Wait(ctx)
		if err != nil {
			return st, err
		}
		return st, AwaitGone(ctx, stateDir)
	} else if !errors.Is(err, ErrShimGone) {
		return ExitStatus{}, err
	}
	if err := removeCgroups(ctx, id); err != nil {
		return ExitStatus{}, err
	}
	for _, name := range []string{runcDir, ConfigFile, HostnameFile, HostsFile, ResolvConfFile, SocketFile, PidFile} {
		if err := os.RemoveAll(filepath.Join(stateDir, name)); err != nil {
			return ExitStatus{}, fmt.Errorf("clean state dir: %w", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(stateDir, ShimLog)); err == nil && fi.Size() == 0 {
		_ = os.Remove(filepath.Join(stateDir, ShimLog))
	}
	st, err := ReadExitStatus(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		st = ExitStatus{ExitCode: 137, Signal: int(syscall.SIGKILL), Finished: time.Now().UTC(), Error: "container shim was lost"}
		s := &shim{stateDir: stateDir, exit: st}
		if err := s.writeExit(); err != nil {
			return st, err
		}
		return st, nil
	}
	return st, err
}

// removeCgroups kills every process in the container's cgroups and
// removes them, in each hierarchy (v1 controllers, or the v2 unified one).
func removeCgroups(ctx context.Context, id string) error {
	dirs, err := filepath.Glob(filepath.Join(cgroupRoot, "*", CgroupPath(id)))
	if err != nil {
		return err
	}
	if d := filepath.Join(cgroupRoot, CgroupPath(id)); fileExists(filepath.Join(d, "cgroup.procs")) {
		dirs = append(dirs, d)
	}
	// A frozen process can't die: thaw first.
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "freezer.state")) {
			_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0o644)
		}
		if fileExists(filepath.Join(d, "cgroup.freeze")) {
			_ = os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0o644)
		}
	}
	for _, d := range dirs {
		for {
			pids, err := cgroupPids(d)
			if err != nil {
				return err
			}
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		if err := removeCgroupDir(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

func cgroupPids(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cgroup: %w", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// removeCgroupDir removes a cgroup and its children, deepest first,
// retrying while the kernel still counts exiting tasks.
func removeCgroupDir(ctx context.Context, dir string) error {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupDir(ctx, filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove cgroup %s: %w", dir, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
