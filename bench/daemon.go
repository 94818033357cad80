package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Daemon is a fusebox daemon that the harness runs for itself, on a root
// and socket of its own, so that a bench run never touches (or depends on)
// the machine's daemon and its store: the images it loads, the containers
// it runs and the mounts it makes all go when Stop returns. Its process ID
// is known, so the memory figures read /proc without searching for it.
type Daemon struct {
	// Root is the daemon's state directory; Host its socket as unix:///path.
	Root, Host string

	cmd    *exec.Cmd
	exited chan struct{}
	sock   string
	tmp    string // a short directory for the socket, when Root is too deep
}

// maxSock is the longest socket path the kernel binds, less a margin.
const maxSock = 100

// StartDaemon starts `exe --root DIR/root -H unix://… daemon` and returns
// once it accepts connections on its socket. The daemon is in a process
// group of its own, so that a Ctrl-C at the terminal reaches the harness
// only, which then stops the daemon after its own teardown (which needs
// the daemon); it also gets SIGTERM should the harness die first.
func StartDaemon(ctx context.Context, exe, dir string) (*Daemon, error) {
	if exe == "" {
		return nil, missingf("no fusebox executable given")
	}
	d := &Daemon{Root: filepath.Join(dir, "root"), exited: make(chan struct{})}
	if err := os.MkdirAll(d.Root, 0o711); err != nil {
		return nil, fmt.Errorf("bench daemon root: %w", err)
	}
	d.sock = filepath.Join(d.Root, "fusebox.sock")
	if len(d.sock) > maxSock {
		tmp, err := os.MkdirTemp("", "fusebox-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench daemon socket dir: %w", err)
		}
		d.tmp, d.sock = tmp, filepath.Join(tmp, "fusebox.sock")
	}
	d.Host = "unix://" + d.sock
	logf, err := os.OpenFile(d.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.cleanup()
		return nil, fmt.Errorf("bench daemon log: %w", err)
	}
	defer logf.Close()
	d.cmd = exec.Command(exe, "--root", d.Root, "-H", d.Host, "daemon")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Dir = d.Root
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		d.cleanup()
		return nil, fmt.Errorf("start bench daemon: %w", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.Dial("unix", d.sock); err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-d.exited:
			d.cleanup()
			return nil, fmt.Errorf("bench daemon exited at start: %s", lastLogLine(d.LogPath()))
		case <-ctx.Done():
			d.Stop(context.WithoutCancel(ctx))
			return nil, ctx.Err()
		case <-deadline.C:
			d.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("bench daemon did not listen on %s within 60 s: %s", d.sock, lastLogLine(d.LogPath()))
		case <-tick.C:
		}
	}
}

// PID is the daemon's process ID.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// LogPath is the daemon's log file.
func (d *Daemon) LogPath() string { return filepath.Join(d.Root, "daemon.log") }

// Stop asks the daemon to shut down (SIGTERM: it stops its containers and
// unmounts what it serves), kills it after a minute, and removes the
// socket directory it made. The root stays for the caller to remove.
func (d *Daemon) Stop(ctx context.Context) error {
	defer d.cleanup()
	defer d.stopStray()
	select {
	case <-d.exited:
		return d.exitErr()
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-d.exited:
		return d.exitErr()
	case <-t.C:
	case <-ctx.Done():
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
	return fmt.Errorf("bench daemon did not stop within a minute on SIGTERM: killed")
}

func (d *Daemon) exitErr() error {
	st := d.cmd.ProcessState
	if st == nil || st.Success() {
		return nil
	}
	// SIGTERM is how Stop asks; a daemon that exits on it is fine.
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
		return nil
	}
	return fmt.Errorf("bench daemon: %s: %s", st, lastLogLine(d.LogPath()))
}

// stopStray stops a daemon that the CLI started on this root after the
// harness's own died (the CLI starts one when nothing answers), so that
// none outlives the run.
func (d *Daemon) stopStray() {
	b, err := os.ReadFile(filepath.Join(d.Root, "daemon.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 || pid == d.PID() {
		return
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !strings.Contains(string(cmdline), d.Root) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 600 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func (d *Daemon) cleanup() {
	if d.tmp != "" {
		os.RemoveAll(d.tmp)
	}
}

func lastLogLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if l := lines[len(lines)-1]; l != "" {
		return l
	}
	return "no message in " + path
}

// procMemory is what /proc says of one process's memory.
type procMemory struct {
	RSS, PSS int64 // bytes; PSS is 0 where smaps_rollup is missing
}

// readProcMemory reads VmRSS from /proc/PID/status and Pss from
// /proc/PID/smaps_rollup (one pass of the kernel over the mappings, cheap
// for a handful of processes).
func readProcMemory(pid int) (procMemory, error) {
	var m procMemory
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	if m.RSS, err = kbField(string(status), "VmRSS:"); err != nil {
		return m, fmt.Errorf("pid %d: %w", pid, err)
	}
	if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		m.PSS, _ = kbField(string(rollup), "Pss:")
	}
	return m, nil
}

var errNoField = errors.New("no such field")

// kbField parses a "Name:   1234 kB" line of a /proc file into bytes.
func kbField(text, name string) (int64, error) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("%s: %w", strings.TrimSuffix(name, ":"), errNoField)
}

// childPIDs lists the processes whose parent is pid: the daemon's shims.
func childPIDs(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 2 {
			if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == pid {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// Server is the harness's daemon, started on first use, so that a run whose
// selection needs no daemon starts none.
type Server struct {
	// Exe is the fusebox executable; Dir holds the daemon's root.
	Exe, Dir string

	once    sync.Once
	mu      sync.Mutex
	d       *Daemon
	err     error
	stopped bool
}

// errStopped is what commands get once the run has stopped its daemon:
// without it the CLI would start a daemon of its own on the same root.
var errStopped = errors.New("bench daemon: stopped")

// Daemon starts the daemon the first time and returns it, or the error
// that its start gave, every time.
func (s *Server) Daemon(ctx context.Context) (*Daemon, error) {
	s.once.Do(func() { s.d, s.err = StartDaemon(ctx, s.Exe, s.Dir) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errStopped
	}
	return s.d, s.err
}

// Stop stops the daemon if it was started; later commands fail.
func (s *Server) Stop(ctx context.Context) error {
	s.once.Do(func() {})
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	if s.d == nil {
		return nil
	}
	return s.d.Stop(ctx)
}
