package launcher

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fusebox/fusebox/internal/sched"
)

// Errors callers test with errors.Is.
var (
	// ErrCommandNotFound: the command doesn't exist (Docker's exit 127).
	ErrCommandNotFound = errors.New("command not found")
	// ErrCommandNotRunnable: the command exists but can't be invoked
	// (Docker's exit 126).
	ErrCommandNotRunnable = errors.New("command cannot be invoked")
	// ErrNotRunning: the container has exited.
	ErrNotRunning = errors.New("container is not running")
	// ErrShimGone: no shim answers on the state directory's socket.
	ErrShimGone = errors.New("container shim is not running")
	// ErrNoTTY: a resize for a process without a tty.
	ErrNoTTY = errors.New("process has no tty")
	// ErrPaused: an exec into a paused container (Docker's refusal).
	ErrPaused = errors.New("container is paused, unpause the container before exec")
	// ErrRunning: Start on a state directory whose shim still runs.
	ErrRunning = errors.New("container is already running")
)

// StartError is a failure to start a container's command or an exec, with
// the exit code Docker reports for it.
type StartError struct {
	Code int // 127 not found, 126 not runnable, 125 or 128 otherwise
	Err  error

	detail string // the runtime's own message, without the sentinel
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// newStartError wraps a start failure's message with the sentinel its
// code stands for.
func newStartError(code int, msg string) *StartError {
	switch code {
	case 127:
		return &StartError{Code: code, Err: fmt.Errorf("%w: %s", ErrCommandNotFound, msg), detail: msg}
	case 126:
		return &StartError{Code: code, Err: fmt.Errorf("%w: %s", ErrCommandNotRunnable, msg), detail: msg}
	}
	return &StartError{Code: code, Err: errors.New(msg), detail: msg}
}

// ExitCode is the exit code Docker gives for err: a StartError's code,
// 125 for any other failure, 0 for nil.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var se *StartError
	if errors.As(err, &se) {
		return se.Code
	}
	return 125
}

// Config is what Start needs to run a container.
type Config struct {
	// ID is the container's id; StateDir its state directory (absolute,
	// created if missing, never on the container's FUSE mount).
	ID       string
	StateDir string
	// Spec is the container's runtime spec, normally from BuildSpec.
	Spec *specs.Spec
	// OpenStdin keeps the command's stdin open for attaching (`-i`);
	// otherwise it reads /dev/null. Ignored with a tty.
	OpenStdin bool
	// LogPath is the json-file log; default StateDir/json.log.
	LogPath string
	// Hosts and ResolvConf are the contents of the container's /etc/hosts
	// and /etc/resolv.conf; nil gives localhost entries and the host's
	// resolv.conf. /etc/hostname is Spec.Hostname.
	Hosts, ResolvConf []byte
	// Exe is the binary run as `Exe shim DIR`; default DefaultExe().
	Exe string
}

// Shim is the daemon's handle on a running shim. Every call opens its own
// connection, so a Shim is safe for concurrent use and holds no resources.
type Shim struct {
	id       string
	stateDir string
	pid      int
	// exe is the binary Start ran, whose spare Begin starts; empty for
	// a shim found again rather than started.
	exe string
}

// ID is the container's id.
func (s *Shim) ID() string { return s.id }

// Pid is the container's init process, as the host sees it.
func (s *Shim) Pid() int { return s.pid }

// StateDir is the container's state directory.
func (s *Shim) StateDir() string { return s.stateDir }

// logPath is where the container's json-file log goes.
func (cfg Config) logPath() string {
	if cfg.LogPath != "" {
		return cfg.LogPath
	}
	return filepath.Join(cfg.StateDir, LogFile)
}

// Start starts the shim (`fusebox-shim shim DIR`) for the container and returns when the
// container exists, its command not yet running (see Begin). The shim runs
// in a session of its own with its working directory in the state
// directory, so it never has a reason to touch the FUSE mount the daemon
// serves. A command that can't be started is a *StartError (errors.Is
// ErrCommandNotFound or ErrCommandNotRunnable), and the shim has then
// already cleaned up.
func Start(ctx context.Context, cfg Config) (*Shim, error) { return start(ctx, cfg, nil) }

// start is Start with the compiled profile given, or compiled (or not) as
// the spec's profile allows when filter is nil.
func start(ctx context.Context, cfg Config, filter *compiledFilter) (*Shim, error) {
	if cfg.ID == "" || cfg.Spec == nil {
		return nil, fmt.Errorf("%w: start needs an id and a spec", ErrInvalidOptions)
	}
	if !filepath.IsAbs(cfg.StateDir) {
		return nil, fmt.Errorf("%w: state dir %q is not an absolute path", ErrInvalidOptions, cfg.StateDir)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o711); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	if err := awaitStopped(ctx, cfg.StateDir); err != nil {
		return nil, fmt.Errorf("%w: %s", err, cfg.ID)
	}
	if err := writeEtcFiles(cfg); err != nil {
		return nil, err
	}
	_ = os.Remove(filepath.Join(cfg.StateDir, ExitFile))
	exe := cfg.Exe
	if exe == "" {
		exe = DefaultExe()
	}
	if filter == nil {
		// A profile that can't be compiled once is compiled by
		// libcontainer in the init, as without this.
		filter, _ = precompiledFilter(ctx, exe, cfg.Spec)
	}
	b, err := json.Marshal(shimConfig{ID: cfg.ID, Spec: cfg.Spec, OpenStdin: cfg.OpenStdin, LogPath: cfg.logPath(), Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("encode shim config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.StateDir, ConfigFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("write shim config: %w", err)
	}
	sp, err := takeShim(exe)
	if err != nil {
		return nil, err
	}
	if sp.background {
		// The container's init inherits the shim's priority: the caller's,
		// not the spare's.
		if err := sched.Restore(sp.cmd.Process.Pid, sp.nice); err != nil {
			sp.discard()
			_ = sp.cmd.Process.Kill()
			<-sp.exited
			return nil, fmt.Errorf("start shim: %w", err)
		}
	}
	cmd, readyR, exited := sp.cmd, sp.readyR, sp.exited
	defer readyR.Close()
	_, err = fmt.Fprintln(sp.dirW, cfg.StateDir)
	_ = sp.dirW.Close()
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("start shim: %w", err)
	}
	type result struct {
		msg readyMsg
		err error
	}
	got := make(chan result, 1)
	go func() {
		var m readyMsg
		err := readJSONLine(bufio.NewReader(readyR), &m)
		got <- result{m, err}
	}()
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		// SIGTERM, not SIGKILL: a shim that got as far as the container
		// kills and destroys it before it exits.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		return nil, ctx.Err()
	}
	if r.err != nil {
		<-exited
		return nil, fmt.Errorf("shim exited before the container started: %s", lastLine(filepath.Join(cfg.StateDir, ShimLog)))
	}
	if r.msg.Error != "" {
		<-exited
		return nil, newStartError(r.msg.ExitCode, r.msg.Error)
	}
	return &Shim{id: cfg.ID, stateDir: cfg.StateDir, pid: r.msg.Pid, exe: exe}, nil
}

// ShimBinary is the name of the small shim binary installed next to
// fuseboxd.
const ShimBinary = "fusebox-shim"

// DefaultExe is the binary Start runs as the shim when Config.Exe is empty:
// fusebox-shim next to the running executable when it is there, since a
// container start re-executes the shim's binary as the container's init
// and the small binary starts faster; otherwise the running executable
// itself (`fuseboxd shim`, `fuseboxd init`).
func DefaultExe() string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), ShimBinary)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return selfExe
}

// selfExe is the running executable, as DefaultExe names it.
const selfExe = "/proc/self/exe"

// A shim is started before it is needed, as a spare: `fusebox-shim shim -`
// waits on the descriptor StateDirFdEnv names for the line that gives its
// state directory, then goes on as `fusebox-shim shim DIR` would. The daemon
// keeps one spare per executable; a spare whose daemon goes away reads
// end of file and exits.
const (
	SpareStateDir = "-"
	StateDirFdEnv = "_FUSEBOX_SHIM_DIR_FD"
)

// spareShim is a started shim waiting for its state directory.
type spareShim struct {
	cmd    *exec.Cmd
	readyR *os.File      // the shim's ready line comes here
	dirW   *os.File      // the state directory goes here
	exited chan struct{} // closed once the shim is reaped
	// A spare is made in the background (sched.Background): at the
	// lowest priority, so that the container it is made beside keeps the
	// CPUs. Taken, it gets nice back.
	background bool
	nice       int
}

var spares = struct {
	sync.Mutex
	byExe map[string]*spareShim
}{byExe: map[string]*spareShim{}}

// spawnShim starts `exe shim -` in a session of its own, its working
// directory at / (never on a FUSE mount) and its stderr nowhere until it
// opens the shim log of its state directory.
func spawnShim(exe string) (*spareShim, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("shim ready pipe: %w", err)
	}
	dirR, dirW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		readyW.Close()
		return nil, fmt.Errorf("shim state dir pipe: %w", err)
	}
	cmd := exec.Command(exe, ShimArg, SpareStateDir)
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{readyW, dirR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(shimEnv(), ReadyFdEnv+"=3", StateDirFdEnv+"=4")
	err = cmd.Start()
	_ = readyW.Close()
	_ = dirR.Close()
	if err != nil {
		readyR.Close()
		dirW.Close()
		return nil, fmt.Errorf("start shim: %w", err)
	}
	sp := &spareShim{cmd: cmd, readyR: readyR, dirW: dirW, exited: make(chan struct{})}
	// The shim outlives the start; reap it when it exits.
	go func() { _ = cmd.Wait(); close(sp.exited) }()
	return sp, nil
}

// takeShim returns the spare shim of exe, or a new one when there is none
// or it died.
func takeShim(exe string) (*spareShim, error) {
	spares.Lock()
	sp := spares.byExe[exe]
	delete(spares.byExe, exe)
	spares.Unlock()
	if sp != nil {
		select {
		case <-sp.exited:
			sp.discard()
		default:
			return sp, nil
		}
	}
	return spawnShim(exe)
}

// refillShim starts the spare of exe unless there is one. It runs in a
// goroutine of its own, whose thread it gives the lowest priority.
func refillShim(exe string) {
	spares.Lock()
	have := spares.byExe[exe] != nil
	spares.Unlock()
	if have {
		return
	}
	nice, err := sched.Nice()
	if err != nil {
		return
	}
	sched.Background()
	sp, err := spawnShim(exe)
	if err != nil {
		return // the next Start spawns one and says why
	}
	sp.background, sp.nice = true, nice
	spares.Lock()
	defer spares.Unlock()
	if spares.byExe[exe] != nil {
		sp.discard()
		return
	}
	spares.byExe[exe] = sp
}

// discard lets a spare go: with its pipe closed it reads end of file and
// exits.
func (sp *spareShim) discard() {
	_ = sp.dirW.Close()
	_ = sp.readyR.Close()
}

// ReadyFdEnv names the variable through which Start tells the shim
// which descriptor is its ready pipe; a shim started by hand has none.
const ReadyFdEnv = "_FUSEBOX_SHIM_READY_FD"

// shimEnv is the shim's environment: the daemon's, minus what would make
// libcontainer's re-exec of the binary misbehave.
func shimEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "_LIBCONTAINER_") || strings.HasPrefix(kv, ReadyFdEnv+"=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if l := lines[len(lines)-1]; l != "" {
		return l
	}
	return "no message"
}

// writeEtcFiles writes the files bind-mounted at /etc/hostname, /etc/hosts
// and /etc/resolv.conf.
func writeEtcFiles(cfg Config) error {
	hostname := cfg.Spec.Hostname
	hosts := cfg.Hosts
	if hosts == nil {
		hosts = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	}
	resolv := cfg.ResolvConf
	if resolv == nil {
		resolv, _ = os.ReadFile("/etc/resolv.conf")
	}
	for name, data := range map[string][]byte{
		HostnameFile:   []byte(hostname + "\n"),
		HostsFile:      hosts,
		ResolvConfFile: resolv,
	} {
		if err := os.WriteFile(filepath.Join(cfg.StateDir, name), data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// Connect returns a handle on the shim still running in stateDir, for a
// daemon that restarted. It fails with ErrShimGone when no shim answers;
// ReadExitStatus then tells how the container ended.
func Connect(ctx context.Context, stateDir string) (*Shim, error) {
	s := &Shim{stateDir: stateDir}
	st, err := s.State(ctx)
	if err != nil {
		return nil, err
	}
	s.id, s.pid = st.ID, st.Pid
	return s, nil
}

// AwaitGone waits until no shim answers on stateDir's socket: the shim of
// a container that exited has destroyed it, removed its runtime files and
// recorded the exit, and the directory is the caller's again.
func AwaitGone(ctx context.Context, stateDir string) error {
	sock := filepath.Join(stateDir, SocketFile)
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "unix", sock)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
		_ = c.Close()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// awaitStopped fails with ErrRunning when a shim runs a live container in
// stateDir, and waits for the shim of one that exited to be gone.
func awaitStopped(ctx context.Context, stateDir string) error {
	st, err := (&Shim{stateDir: stateDir}).State(ctx)
	switch {
	case errors.Is(err, ErrShimGone):
		return nil
	case err != nil:
		return err
	case st.Status != "stopped":
		return ErrRunning
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := AwaitGone(wctx, stateDir); err != nil {
		return fmt.Errorf("%w: the shim of its last run is still there", ErrRunning)
	}
	return nil
}

// ReadExitStatus reads the exit status a shim recorded in stateDir.
// It wraps os.ErrNotExist when none was recorded.
func ReadExitStatus(stateDir string) (ExitStatus, error) {
	var st ExitStatus
	b, err := os.ReadFile(filepath.Join(stateDir, ExitFile))
	if err != nil {
		return st, fmt.Errorf("read exit status: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("parse exit status: %w", err)
	}
	return st, nil
}

// dial connects to the shim and sends req; the connection closes when ctx
// ends.
func (s *Shim) dial(ctx context.Context, req request) (*net.UnixConn, *bufio.Reader, func(), error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(s.stateDir, SocketFile))
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrShimGone, err)
	}
	conn := c.(*net.UnixConn)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	done := func() { stop(); _ = conn.Close() }
	if err := writeJSONLine(conn, req); err != nil {
		done()
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrShimGone, err)
	}
	return conn, bufio.NewReader(conn), done, nil
}

// call makes a request with a single response.
func (s *Shim) call(ctx context.Context, req request) (response, error) {
	_, br, done, err := s.dial(ctx, req)
	if err != nil {
		return response{}, err
	}
	defer done()
	var resp response
	if err := readJSONLine(br, &resp); err != nil {
		if ctx.Err() != nil {
			return resp, ctx.Err()
		}
		return resp, fmt.Errorf("%w: %w", ErrShimGone, err)
	}
	if resp.Error != "" {
		return resp, remoteError(resp.Error)
	}
	return resp, nil
}

// remoteError turns a shim's error text back into the sentinel it names.
func remoteError(msg string) error {
	for _, e := range []error{ErrNotRunning, ErrNoTTY, ErrPaused} {
		if msg == e.Error() {
			return e
		}
	}
	return errors.New(msg)
}

// Begin lets the container's command run (the created container's init
// exec's it). Attach first to miss no output.
func (s *Shim) Begin(ctx context.Context) error {
	_, err := s.call(ctx, request{Op: opBegin})
	if err == nil && s.exe != "" {
		// The next start takes the shim started now, already past exec,
		// the Go runtime's start-up and its first decode of a spec
		// (warmDecoders): most of what a shim costs before libcontainer
		// runs. Started after this start rather than beside it, and at the
		// lowest priority, on a two-CPU machine it takes no CPU from the
		// container's init, nor from the exit and removal of a short
		// command (`run --rm IMAGE true`), which it overlapped.
		go refillShim(s.exe)
	}
	return err
}

// Stdio are the streams of an attach or an exec.
type Stdio struct {
	Stdin  io.Reader // nil: none
	Stdout io.Writer // nil: not attached; with a tty, all output comes here
	Stderr io.Writer // nil: not attached
	// CloseStdin closes the command's stdin when Stdin ends (Docker's
	// StdinOnce); otherwise the next attach may go on feeding it.
	CloseStdin bool
}

// Attachment is a live attach; Wait for its end.
type Attachment struct {
	done chan struct{}
	err  error
}

// Wait returns when the output streams have ended (the command exited, or
// the attach's ctx was done).
func (a *Attachment) Wait() error {
	<-a.done
	return a.err
}

// Attach connects stdio to the container's command. It returns once the
// shim has registered the streams, so output from a Begin after it is never
// missed (output written before an attach is only in the log); the copying
// goes on until the command's output ends or ctx is done. A goroutine may
// stay blocked reading Stdin after that, until Stdin yields or closes.
func (s *Shim) Attach(ctx context.Context, stdio Stdio) (*Attachment, error) {
	req := request{Op: opAttach, Stdin: stdio.Stdin != nil, Stdout: stdio.Stdout != nil, Stderr: stdio.Stderr != nil, CloseStdin: stdio.CloseStdin}
	conn, br, done, err := s.dial(ctx, req)
	if err != nil {
		return nil, err
	}
	var resp response
	if err := readJSONLine(br, &resp); err != nil {
		done()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrShimGone, err)
	}
	if resp.Error != "" {
		done()
		return nil, remoteError(resp.Error)
	}
	if stdio.Stdin != nil {
		go func() {
			_, _ = io.Copy(conn, stdio.Stdin)
			_ = conn.CloseWrite()
		}()
	}
	a := &Attachment{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer done()
		a.err = pumpFrames(br, stdio, nil)
		if ctx.Err() != nil {
			a.err = ctx.Err()
		}
	}()
	return a, nil
}

// pumpFrames copies frames to stdio until EOF or an exit frame.
func pumpFrames(br *bufio.Reader, stdio Stdio, exit *ExitStatus) error {
	buf := make([]byte, 32*1024)
	for {
		stream, p, err := readFrame(br, buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch stream {
		case frameStdout:
			if stdio.Stdout != nil {
				_, _ = stdio.Stdout.Write(p)
			}
		case frameStderr:
			if stdio.Stderr != nil {
				_, _ = stdio.Stderr.Write(p)
			}
		case frameExit:
			if exit != nil {
				if err := json.Unmarshal(p, exit); err != nil {
					return fmt.Errorf("parse exec exit: %w", err)
				}
			}
			return nil
		}
	}
}

// Resize sets the container's tty size.
func (s *Shim) Resize(ctx context.Context, width, height uint16) error {
	_, err := s.call(ctx, request{Op: opResize, Width: width, Height: height})
	return err
}

// Signal sends sig to the container's command (SIGKILL also thaws a paused
// container so that it dies).
func (s *Shim) Signal(ctx context.Context, sig syscall.Signal) error {
	_, err := s.call(ctx, request{Op: opSignal, Signal: int(sig)})
	return err
}

// Stop sends sig (the container's stop signal), waits up to timeout for the
// command to exit, then sends SIGKILL, as `docker stop` does.
func (s *Shim) Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) (ExitStatus, error) {
	if err := s.Signal(ctx, sig); err != nil && !errors.Is(err, ErrNotRunning) && !errors.Is(err, ErrShimGone) {
		return ExitStatus{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	st, err := s.Wait(wctx)
	cancel()
	if err == nil || ctx.Err() != nil || sig == syscall.SIGKILL {
		if err != nil && ctx.Err() == nil {
			// SIGKILL was the signal: nothing stronger to send.
			return s.Wait(ctx)
		}
		return st, err
	}
	if err := s.Signal(ctx, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
		return ExitStatus{}, err
	}
	return s.Wait(ctx)
}

// Pause freezes every process of the container (freezer cgroup).
func (s *Shim) Pause(ctx context.Context) error {
	_, err := s.call(ctx, request{Op: opPause})
	return err
}

// Resume thaws a paused container.
func (s *Shim) Resume(ctx context.Context) error {
	_, err := s.call(ctx, request{Op: opResume})
	return err
}

// Wait returns how the command ended, once it ended and its output was
// drained: no process of the container is left (the rootfs may be
// unmounted then). The shim destroys the container after it answers; see
// AwaitGone. If the shim is gone it returns the status the shim recorded.
func (s *Shim) Wait(ctx context.Context) (ExitStatus, error) {
	resp, err := s.call(ctx, request{Op: opWait})
	if err == nil && resp.Exit != nil {
		return *resp.Exit, nil
	}
	if ctx.Err() != nil {
		return ExitStatus{}, ctx.Err()
	}
	if err != nil && !errors.Is(err, ErrShimGone) {
		return ExitStatus{}, err
	}
	st, rerr := ReadExitStatus(s.stateDir)
	if rerr != nil {
		return ExitStatus{}, fmt.Errorf("%w and %w", ErrShimGone, rerr)
	}
	return st, nil
}

// State returns the shim's view of the container.
func (s *Shim) State(ctx context.Context) (State, error) {
	resp, err := s.call(ctx, request{Op: opState})
	if err != nil {
		return State{}, err
	}
	return *resp.State, nil
}

// Processes returns the host pids of the container's processes, for `top`.
func (s *Shim) Processes(ctx context.Context) ([]int, error) {
	resp, err := s.call(ctx, request{Op: opTop})
	return resp.Pids, err
}

// Stats reads the container's cgroup counters.
func (s *Shim) Stats(ctx context.Context) (Stats, error) {
	resp, err := s.call(ctx, request{Op: opStats})
	if err != nil {
		return Stats{}, err
	}
	return *resp.Stats, nil
}

// Exec is a running extra process started by Shim.Exec.
type Exec struct {
	shim *Shim
	id   string
	pid  int
	done chan struct{}
	exit ExitStatus
	err  error
}

// Exec starts an extra process in the container and streams stdio until it
// exits. A command that can't be started is a *StartError.
func (s *Shim) Exec(ctx context.Context, cfg ExecConfig, stdio Stdio) (*Exec, error) {
	conn, br, done, err := s.dial(context.Background(), request{Op: opExec, Exec: &cfg})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, done)
	var resp response
	if err := readJSONLine(br, &resp); err != nil {
		stop()
		done()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrShimGone, err)
	}
	if resp.Error != "" {
		stop()
		done()
		if resp.ExitCode == 126 || resp.ExitCode == 127 {
			return nil, newStartError(resp.ExitCode, resp.Error)
		}
		return nil, &StartError{Code: resp.ExitCode, Err: remoteError(resp.Error)}
	}
	e := &Exec{shim: s, id: cfg.ID, pid: resp.Pid, done: make(chan struct{})}
	if stdio.Stdin != nil {
		go func() {
			_, _ = io.Copy(conn, stdio.Stdin)
			_ = conn.CloseWrite()
		}()
	}
	go func() {
		defer close(e.done)
		defer stop()
		defer done()
		e.exit.ExitCode = -1
		e.err = pumpFrames(br, stdio, &e.exit)
		if e.err == nil && e.exit.ExitCode < 0 {
			e.err = fmt.Errorf("%w: exec ended without a status", ErrShimGone)
		}
	}()
	return e, nil
}

// Pid is the exec's process, as the host sees it.
func (e *Exec) Pid() int { return e.pid }

// Resize sets the exec's tty size.
func (e *Exec) Resize(ctx context.Context, width, height uint16) error {
	if e.id == "" {
		return fmt.Errorf("%w: exec has no id", ErrInvalidOptions)
	}
	_, err := e.shim.call(ctx, request{Op: opResize, ExecID: e.id, Width: width, Height: height})
	return err
}

// Wait returns the exec's exit status once it has exited and its output
// has been delivered.
func (e *Exec) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-e.done:
		return e.exit, e.err
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}
