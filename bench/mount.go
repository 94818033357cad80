package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mountPoints lists the mount points of this mount namespace, read from
// /proc/self/mountinfo and unescaped (the kernel writes spaces as \040).
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMountinfo(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isMountPoint reports whether dir is the mount point of some mount.
func isMountPoint(dir string) (bool, error) {
	dir = filepath.Clean(dir)
	mps, err := mountPoints()
	if err != nil {
		return false, err
	}
	for _, mp := range mps {
		if mp == dir {
			return true, nil
		}
	}
	return false, nil
}

// waitMounted polls until dir is a mount point, exited reports a failure of
// the mounting process, or the context or timeout ends. FUSE programs return
// (or keep running) at their own pace, so the mount table is the only
// reliable signal that the file system is there.
func waitMounted(ctx context.Context, dir string, timeout time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(timeout)
	delay := 200 * time.Microsecond
	for {
		ok, err := isMountPoint(dir)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case err := <-exited:
			if err != nil {
				return err
			}
			// The program daemonized (its parent exited 0); keep polling until
			// the mount shows up or the time is up.
			exited = nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not mounted after %s", dir, timeout)
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

// unmount detaches the mount at dir, retrying a busy mount briefly and
// falling back to a lazy unmount so that nothing outlives the run.
func unmount(dir string) error {
	var err error
	for i := 0; i < 20; i++ {
		err = unix.Unmount(dir, 0)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lerr := unix.Unmount(dir, unix.MNT_DETACH); lerr != nil && !errors.Is(lerr, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// unmountAllUnder unmounts every mount at or below dir, deepest first. The
// runner calls it on its scratch directory when it ends, however it ends,
// so that a failure or Ctrl-C in the middle of a workload leaves no mount.
func unmountAllUnder(dir string) error {
	dir = filepath.Clean(dir)
	mps, err := mountPoints()
	if err != nil {
		return err
	}
	var under []string
	for _, mp := range mps {
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			under = append(under, mp)
		}
	}
	sort.Slice(under, func(i, j int) bool { return len(under[i]) > len(under[j]) })
	var errs []error
	for _, mp := range under {
		if err := unmount(mp); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dropCaches writes back dirty data and empties the page, dentry and inode
// caches, so that the next run reads from the disk. Every backend's cold
// run is preceded by exactly this.
func dropCaches() error {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("drop caches: %w", err)
	}
	return nil
}

// removeScratch removes a scratch directory, after making sure nothing is
// mounted in it: removing through a live mount would delete the files
// behind it (the native copy, a lower layer).
func removeScratch(dir string) error {
	if err := unmountAllUnder(dir); err != nil {
		return fmt.Errorf("not removing %s: %w", dir, err)
	}
	return os.RemoveAll(dir)
}
