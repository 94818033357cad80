package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrMissing marks a backend or figure that cannot be measured on this
// machine or at this commit. The error's text says why; the report shows it
// in place of a figure, so nothing is skipped silently.
var ErrMissing = errors.New("missing")

// missingf returns an error wrapping ErrMissing with a reason.
func missingf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMissing, fmt.Sprintf(format, args...))
}

// A Backend is one way of presenting the layered data set as a directory:
// the anchors (kernel overlayfs, fuse-overlayfs), the native merged copy and
// fusebox itself. Layers are given top first, as in overlayfs's lowerdir;
// upper and work are empty directories on the same file system, for
// backends with a writable layer; target is an existing empty directory.
type Backend interface {
	// Name is the backend's column in the report, e.g. "kernel overlayfs".
	Name() string
	// Available returns nil when the backend can be measured here, or an
	// error wrapping ErrMissing that says why not.
	Available(ctx context.Context) error
	// Mount makes the merged view of layers appear at target, ready to use
	// when it returns.
	Mount(ctx context.Context, layers []string, upper, work, target string) error
	// Unmount removes what Mount made at target.
	Unmount(ctx context.Context, target string) error
}

// A Preparer is a backend that needs one-time, unmeasured work for a layer
// chain before its first Mount (a merged copy, an image import). The runner
// calls Prepare once per chain, before any measured run.
type Preparer interface {
	Prepare(ctx context.Context, layers []string) error
}

// A Describer is a backend that can say more about itself than its name
// (version, options) for the report.
type Describer interface {
	Describe() string
}

// Native is the no-union baseline: a plain directory holding a merged copy
// of the layers, bind-mounted at the target. Writes go straight into the
// copy, so workloads that write undo their change after the measurement.
type Native struct {
	// CacheDir holds the merged copies, one per layer chain.
	CacheDir string

	mu     sync.Mutex
	merged map[string]string // layer chain key → merged directory
}

var (
	_ Backend   = (*Native)(nil)
	_ Preparer  = (*Native)(nil)
	_ Describer = (*Native)(nil)
)

func (n *Native) Name() string { return "native" }
func (n *Native) Describe() string {
	return "merged copy of the layers on the host file system, bind-mounted"
}
func (n *Native) Available(context.Context) error { return nil }

// Prepare builds (or finds, from an earlier run) the merged copy of layers.
// A copy whose shape (names, types, modes, owners, sizes) no longer matches
// the one recorded when it was built, say after a run was killed in the
// middle of a write workload, is built again.
func (n *Native) Prepare(ctx context.Context, layers []string) error {
	key := chainKey(layers)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.merged[key]; ok {
		return nil
	}
	dir := filepath.Join(n.CacheDir, "native-"+key)
	root := filepath.Join(dir, "root")
	stamp, err := os.ReadFile(filepath.Join(dir, stampName))
	if err == nil {
		if fp, ferr := treeShape(root); ferr != nil || fp != strings.TrimSpace(string(stamp)) {
			err = fmt.Errorf("native copy changed")
		}
	}
	if err != nil {
		tmp := dir + ".tmp"
		for _, d := range []string{tmp, dir} {
			if err := os.RemoveAll(d); err != nil {
				return fmt.Errorf("native copy: %w", err)
			}
		}
		if err := MergeLayers(ctx, layers, filepath.Join(tmp, "root")); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("native copy: %w", err)
		}
		fp, err := treeShape(filepath.Join(tmp, "root"))
		if err != nil {
			return fmt.Errorf("native copy: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, stampName), []byte(fp+"\n"), 0o644); err != nil {
			return fmt.Errorf("native copy: %w", err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("native copy: %w", err)
		}
	}
	if n.merged == nil {
		n.merged = map[string]string{}
	}
	n.merged[key] = root
	return nil
}

// treeShape hashes the names, types, modes, owners and sizes of a tree (not
// times, which touch changes, nor contents, which would cost a full read).
func treeShape(root string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		size := fi.Size()
		if fi.IsDir() {
			size = 0
		}
		fmt.Fprintf(h, "%s\x00%o %d %d %d\n", p[len(root):], st.Mode, st.Uid, st.Gid, size)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

func (n *Native) Mount(ctx context.Context, layers []string, upper, work, target string) error {
	n.mu.Lock()
	src, ok := n.merged[chainKey(layers)]
	n.mu.Unlock()
	if !ok {
		return fmt.Errorf("native: layer chain not prepared")
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s: %w", target, err)
	}
	return nil
}

func (n *Native) Unmount(ctx context.Context, target string) error { return unmount(target) }

// KernelOverlay mounts the layers with the kernel's overlayfs and its
// default options, as Docker's overlay2 driver does: the physical limit for
// a union mount.
type KernelOverlay struct{}

var (
	_ Backend   = KernelOverlay{}
	_ Describer = KernelOverlay{}
)

func (KernelOverlay) Name() string { return KernelOverlayName }

// Describe names the module defaults that change what copy-up costs
// (with metacopy off, a chmod copies the whole file up).
func (KernelOverlay) Describe() string {
	var parts []string
	for _, p := range []string{"metacopy", "index", "redirect_dir"} {
		if v, err := os.ReadFile("/sys/module/overlay/parameters/" + p); err == nil {
			parts = append(parts, p+"="+strings.TrimSpace(string(v)))
		}
	}
	return "mount -t overlay, default options (" + strings.Join(parts, ", ") + ")"
}

func (KernelOverlay) Available(context.Context) error {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return missingf("cannot read /proc/filesystems: %v", err)
	}
	if !bytes.Contains(data, []byte("\toverlay\n")) {
		// The module may load on first use; try it before giving up.
		if err := exec.Command("modprobe", "overlay").Run(); err != nil {
			return missingf("kernel has no overlay file system")
		}
	}
	if os.Geteuid() != 0 {
		return missingf("mounting overlayfs needs root")
	}
	return nil
}

func (KernelOverlay) Mount(ctx context.Context, layers []string, upper, work, target string) error {
	opts := "lowerdir=" + strings.Join(layers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

func (KernelOverlay) Unmount(ctx context.Context, target string) error { return unmount(target) }

// FuseProgram is a FUSE union file system started as a program with
// fuse-overlayfs's command line: `PROG -o lowerdir=A:B,upperdir=U,workdir=W
// MNT`. Debian's fuse-overlayfs and fusebox's own fusebox-overlay are both
// measured through it. The program may daemonize (fuse-overlayfs does) or
// stay in the foreground; either way Mount returns once the mount is in the
// mount table.
type FuseProgram struct {
	// Label is the backend's name in the report.
	Label string
	// Path is the program; when empty, Missing says why.
	Path string
	// Missing is the reason the program was not found.
	Missing string

	mu    sync.Mutex
	procs map[string]*server // target → foreground server
}

var (
	_ Backend   = (*FuseProgram)(nil)
	_ Describer = (*FuseProgram)(nil)
)

func (p *FuseProgram) Name() string { return p.Label }

// Describe gives the program's path and the version it reports.
func (p *FuseProgram) Describe() string {
	if p.Path == "" {
		return ""
	}
	out, _ := exec.Command(p.Path, "--version").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "version") && !strings.Contains(line, "fusermount") && !strings.Contains(line, "FUSE") {
			return p.Path + ", " + strings.TrimSpace(line)
		}
	}
	return p.Path
}

func (p *FuseProgram) Available(context.Context) error {
	if p.Path == "" {
		return missingf("%s", p.Missing)
	}
	if _, err := os.Stat(p.Path); err != nil {
		return missingf("%s: %v", p.Path, err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return missingf("no /dev/fuse")
	}
	return nil
}

func (p *FuseProgram) Mount(ctx context.Context, layers []string, upper, work, target string) error {
	opts := "lowerdir=" + strings.Join(layers, ":") + ",upperdir=" + upper + ",workdir=" + work
	// Not CommandContext: a foreground FUSE server must outlive ctx until
	// Unmount, which the runner calls even after a cancellation.
	cmd := exec.Command(p.Path, "-o", opts, target)
	// Its own process group: a Ctrl-C at the terminal must reach the
	// harness, which unmounts, and not kill a foreground server first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Path, err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%s: %w: %s", filepath.Base(p.Path), err, strings.TrimSpace(stderr.String()))
		}
		exited <- err
		close(done)
	}()
	if err := waitMounted(ctx, target, 30*time.Second, exited); err != nil {
		cmd.Process.Kill()
		unmount(target)
		return err
	}
	select {
	case <-done:
		// daemonized: nothing to keep
	default:
		p.mu.Lock()
		if p.procs == nil {
			p.procs = map[string]*server{}
		}
		p.procs[target] = &server{proc: cmd.Process, done: done}
		p.mu.Unlock()
	}
	return nil
}

func (p *FuseProgram) Unmount(ctx context.Context, target string) error {
	err := unmount(target)
	p.mu.Lock()
	srv := p.procs[target]
	delete(p.procs, target)
	p.mu.Unlock()
	if srv != nil {
		// Give the server a moment to see the unmount and exit by itself.
		select {
		case <-srv.done:
		case <-time.After(5 * time.Second):
			srv.proc.Kill()
			<-srv.done
		}
	}
	return err
}

// server is a FUSE program that stayed in the foreground.
type server struct {
	proc *os.Process
	done <-chan struct{} // closed when it has exited
}

// FindProgram looks for name next to the running executable, then in PATH.
// It returns the path, or "" and the reason it was not found.
func FindProgram(name string) (path, missing string) {
	var tried []string
	if exe, err := os.Executable(); err == nil {
		cand := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(cand); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return cand, ""
		}
		tried = append(tried, filepath.Dir(exe))
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, ""
	}
	tried = append(tried, "PATH")
	return "", fmt.Sprintf("no %s binary in %s", name, strings.Join(tried, " or "))
}

// chainKey names a layer chain for caches: a short hash of its paths.
func chainKey(layers []string) string {
	return shortHash(strings.Join(layers, "\x00"))
}
