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
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	// The device cgroup rules need the cgroups device manager.
	_ "github.com/opencontainers/cgroups/devices"
)

// shimConfig is what Start writes to the state directory for the shim.
type shimConfig struct {
	ID        string      `json:"id"`
	Spec      *specs.Spec `json:"spec"`
	OpenStdin bool        `json:"openStdin"`
	LogPath   string      `json:"logPath"`
	// Filter is Spec's seccomp profile compiled, when it was
	// (precompiledFilter): the container's processes load it instead of
	// having libcontainer compile the profile in each of them.
	Filter *compiledFilter `json:"filter,omitempty"`
}

// readyMsg is the line the shim writes on its ready pipe: the container
// exists, or why it doesn't.
type readyMsg struct {
	Pid      int    `json:"pid,omitempty"`
	Error    string `json:"error,omitempty"`
	ExitCode int    `json:"exitCode,omitempty"`
}

// shim is the server side: the parent of one container.
type shim struct {
	stateDir  string
	cfg       shimConfig
	container *libcontainer.Container
	process   *libcontainer.Process
	log       *logFile

	stdinMu sync.Mutex
	stdin   io.WriteCloser // the command's stdin, nil when not open
	console *os.File       // the pty master with a tty

	subMu sync.Mutex
	subs  map[*subscriber]struct{}

	outputDone chan struct{} // closed when the command's output is drained
	exitKnown  chan struct{} // closed when exit is final: Wait answers from then on
	exited     chan struct{} // closed when, besides, the container is destroyed
	exit       ExitStatus

	mu      sync.Mutex
	started time.Time
	execs   map[string]*os.File // exec id → its pty master, for resize

	handlers sync.WaitGroup
	output   sync.WaitGroup // the copiers of the command's output
}

// subscriber is an attached connection that receives output frames.
type subscriber struct {
	mu             sync.Mutex
	conn           net.Conn
	stdout, stderr bool
	dead           bool
}

func (s *subscriber) send(stream byte, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return
	}
	if err := writeFrame(s.conn, stream, p); err != nil {
		s.dead = true
	}
}

// ShimArg is the argument with which Start runs a shim: `<exe> shim DIR`.
const ShimArg = "shim"

// RunShim is the body of `fusebox-shim shim DIR` (and `fuseboxd shim DIR`): it runs
// the container described by the state directory's config.json, serves the
// daemon on the state directory's socket until the command has exited and
// the container is destroyed, and records the exit status. The descriptor
// ReadyFdEnv names, when Start passed one, receives one JSON line when the
// container exists (or failed to), then is closed.
func RunShim(ctx context.Context, stateDir string) error {
	var ready io.WriteCloser
	if fd, err := strconv.Atoi(os.Getenv(ReadyFdEnv)); err == nil && fd > 2 {
		// Not for the container's init, which the shim forks.
		unix.CloseOnExec(fd)
		ready = os.NewFile(uintptr(fd), "ready")
	}
	os.Unsetenv(ReadyFdEnv)
	// libcontainer logs through logrus to stderr, which is the shim log;
	// keep it to what someone debugging a container needs.
	logrus.SetLevel(logrus.WarnLevel)
	if stateDir == SpareStateDir {
		dir, err := awaitStateDir()
		if err != nil {
			return err
		}
		stateDir = dir
	}
	s := &shim{
		stateDir:   stateDir,
		subs:       map[*subscriber]struct{}{},
		outputDone: make(chan struct{}),
		exitKnown:  make(chan struct{}),
		exited:     make(chan struct{}),
		execs:      map[string]*os.File{},
	}
	tell := func(m readyMsg) {
		if ready != nil {
			_ = writeJSONLine(ready, m)
			_ = ready.Close()
			ready = nil
		}
	}
	err := s.run(ctx, tell)
	if err != nil {
		m := readyMsg{Error: err.Error(), ExitCode: 125}
		var se *StartError
		if errors.As(err, &se) {
			m = readyMsg{Error: se.detail, ExitCode: se.Code}
		}
		tell(m)
	}
	return err
}

// awaitStateDir is a spare shim's wait for its container: it reads the
// state directory from the descriptor StateDirFdEnv names, moves there and
// sends its stderr to the shim log, as Start does for a shim it starts for
// a container. End of file means the daemon went away without needing it.
func awaitStateDir() (string, error) {
	fd, err := strconv.Atoi(os.Getenv(StateDirFdEnv))
	if err != nil || fd < 3 {
		return "", fmt.Errorf("spare shim: no %s", StateDirFdEnv)
	}
	os.Unsetenv(StateDirFdEnv)
	unix.CloseOnExec(fd) // not for the container's init
	f := os.NewFile(uintptr(fd), "state-dir")
	defer f.Close()
	warmDecoders()
	line, err := bufio.NewReader(f).ReadString('\n')
	dir := strings.TrimSpace(line)
	if err != nil || !filepath.IsAbs(dir) {
		return "", fmt.Errorf("spare shim: no state directory given: %w", errors.Join(err, errSpareUnused))
	}
	if err := os.Chdir(dir); err != nil {
		return "", fmt.Errorf("spare shim: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, ShimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", fmt.Errorf("spare shim: open shim log: %w", err)
	}
	defer logf.Close()
	if err := unix.Dup3(int(logf.Fd()), 2, 0); err != nil {
		return "", fmt.Errorf("spare shim: stderr to shim log: %w", err)
	}
	return dir, nil
}

// warmDecoders decodes a container's config the way run will, while a
// spare shim has nothing else to do. encoding/json builds its decoder for
// each type the first time it meets it, by reflection, and a spec has
// hundreds of types' worth of fields; in a fresh process the first decode
// of a container's 12 KiB config took 8 to 18 ms of every start (measured
// in the shim), almost all of it this one-time work and the faults of the
// code it runs.
func warmDecoders() {
	spec, err := BuildSpec(Options{ID: "spare", Rootfs: "/", StateDir: "/", Args: []string{"true"}})
	if err != nil {
		return
	}
	b, err := json.Marshal(shimConfig{ID: "spare", Spec: spec})
	if err != nil {
		return
	}
	var c shimConfig
	if json.Unmarshal(b, &c) != nil {
		return
	}
	// The same for what create does next: libcontainer's conversion of
	// the spec, and its encoding of the result for the container's init.
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: "spare", Spec: c.Spec})
	if err != nil {
		return
	}
	_, _ = json.Marshal(config)
}

// errSpareUnused ends a spare shim that was never given a container.
var errSpareUnused = errors.New("unused")

func (s *shim) run(ctx context.Context, tell func(readyMsg)) error {
	b, err := os.ReadFile(filepath.Join(s.stateDir, ConfigFile))
	if err != nil {
		return fmt.Errorf("read shim config: %w", err)
	}
	if err := json.Unmarshal(b, &s.cfg); err != nil {
		return fmt.Errorf("parse shim config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.stateDir, PidFile), fmt.Appendf(nil, "%d", os.Getpid()), 0o644); err != nil {
		return fmt.Errorf("write shim pid: %w", err)
	}
	defer os.Remove(filepath.Join(s.stateDir, PidFile))
	defer func() {
		// The shim's own stderr log is kept only when it says something.
		p := filepath.Join(s.stateDir, ShimLog)
		if fi, err := os.Stat(p); err == nil && fi.Size() == 0 {
			_ = os.Remove(p)
		}
	}()
	signal.Ignore(unix.SIGPIPE, unix.SIGHUP)
	// Caught from the start, so that a SIGTERM during the create waits in
	// the channel and kills the container once it exists.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)

	s.log, err = openLogFile(s.cfg.LogPath)
	if err != nil {
		return err
	}
	defer s.log.Close()

	// The socket exists before the container, so that a daemon that sees
	// the ready line can always connect.
	sock := filepath.Join(s.stateDir, SocketFile)
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listen on shim socket: %w", err)
	}
	defer os.Remove(sock)
	defer ln.Close()

	if err := s.create(); err != nil {
		s.exit = ExitStatus{ExitCode: ExitCode(err), Finished: time.Now().UTC(), Error: err.Error()}
		s.removeRuntimeFiles()
		_ = s.writeExit()
		return err
	}
	pid, _ := s.process.Pid()
	tell(readyMsg{Pid: pid})

	go s.accept(ln)

	// Killing the shim kills its container, so that nothing outlives it
	// unsupervised; the usual exit path then cleans up.
	go func() {
		select {
		case <-sigs:
			_ = s.container.Signal(unix.SIGKILL)
		case <-ctx.Done():
			_ = s.container.Signal(unix.SIGKILL)
		case <-s.exited:
		}
	}()

	s.waitAndDestroy()
	// Give the handlers that were waiting for the exit a moment to answer.
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return nil
}

// create makes the container and starts its init, which stops before exec'ing
// the command until Begin. A command that can't be found or run fails here.
func (s *shim) create() (err error) {
	spec := s.cfg.Spec
	if spec == nil || spec.Process == nil {
		return errors.New("shim config has no process")
	}
	if spec.Linux != nil && spec.Linux.Seccomp != nil && !SeccompSupported() {
		// As Docker on a host without seccomp: the container runs, and
		// the log says why it is not confined.
		fmt.Fprintf(os.Stderr, "warning: %s: this shim (%s) was %s; the container runs without its seccomp profile\n", s.cfg.ID, shimExeName(), NoSeccompSupport)
		spec.Linux.Seccomp = nil
	}
	if s.cfg.Filter != nil {
		// The processes load the compiled program themselves.
		spec = withoutSeccomp(spec)
	}
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: s.cfg.ID,
		Spec:       spec,
	})
	if err != nil {
		return fmt.Errorf("convert spec: %w", err)
	}
	s.container, err = libcontainer.Create(filepath.Join(s.stateDir, runcDir), s.cfg.ID, config)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	defer func() {
		if err != nil {
			_ = s.container.Destroy()
		}
	}()
	if err := ensureWorkdir(spec); err != nil {
		return err
	}
	p, err := newProcess(spec.Process)
	if err != nil {
		return err
	}
	p.Init = true
	closeAfter, consoleSock, err := s.setupIO(p, spec.Process.Terminal)
	if err != nil {
		return err
	}
	handed, err := handFilter(p, s.cfg.Filter)
	if err != nil {
		closeAll(closeAfter)
		return err
	}
	closeAfter = append(closeAfter, handed...)
	err = s.container.Start(p)
	if err == nil {
		// The init waits for Begin before it execs the command.
		err = s.confirmFiltered(p, false)
	}
	if err != nil {
		closeAll(closeAfter)
		if consoleSock != nil {
			_ = consoleSock.Close()
		}
		return startError(err)
	}
	if consoleSock != nil {
		if s.console, err = recvConsole(consoleSock); err != nil {
			closeAll(closeAfter)
			_ = p.Signal(unix.SIGKILL)
			_, _ = p.Wait()
			return fmt.Errorf("receive container console: %w", err)
		}
		s.copyOutput(s.console, "stdout", frameStdout)
	}
	closeAll(closeAfter)
	s.process = p
	return nil
}

// setupIO gives p a console socket or pipes, and starts copying the output
// of the pipes. It returns the container's ends, which the shim closes once
// the container has them, and the shim's end of the console socket.
func (s *shim) setupIO(p *libcontainer.Process, tty bool) ([]io.Closer, *os.File, error) {
	if tty {
		parent, child, err := sockPair()
		if err != nil {
			return nil, nil, err
		}
		p.ConsoleSocket = child
		return []io.Closer{child}, parent, nil
	}
	var closers []io.Closer
	if s.cfg.OpenStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		p.Stdin = r
		s.stdin = w
		closers = append(closers, r)
	}
	for _, st := range []struct {
		name  string
		frame byte
		dst   *io.Writer
	}{{"stdout", frameStdout, &p.Stdout}, {"stderr", frameStderr, &p.Stderr}} {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(closers)
			return nil, nil, err
		}
		*st.dst = w
		closers = append(closers, w)
		s.copyOutput(r, st.name, st.frame)
	}
	return closers, nil, nil
}

// copyOutput copies one output stream to the log and the attached clients.
func (s *shim) copyOutput(r io.ReadCloser, stream string, frame byte) {
	s.output.Add(1)
	ls := &logStream{log: s.log, stream: stream}
	go func() {
		defer s.output.Done()
		defer r.Close()
		defer ls.flush()
		buf := make([]byte, 32*1024)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				_, _ = ls.Write(buf[:n])
				s.subMu.Lock()
				for sub := range s.subs {
					if (frame == frameStdout && sub.stdout) || (frame == frameStderr && sub.stderr) {
						sub.send(frame, buf[:n])
					}
				}
				s.subMu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
}

// waitAndDestroy waits for the command, drains its output, answers the
// waits for its exit, then destroys the container and records the exit.
//
// Waits are answered before the container is destroyed: by then every
// process of the container is gone (its pid namespace ended with its
// init), and what is left — removing 11 cgroups, libcontainer's state and
// the runtime files, about 5 ms — need not hold up `run --rm`. The daemon
// waits for the shim to exit (AwaitGone) before it removes or reuses the
// state directory.
func (s *shim) waitAndDestroy() {
	ps, err := s.process.Wait()
	finished := time.Now().UTC()
	st := exitStatus(ps, err)
	st.Finished = finished

	// The pid namespace dies with its init, so the output pipes close
	// now; a pty master reports EIO once drained. Don't wait forever on
	// a descriptor some stray process still holds.
	drained := make(chan struct{})
	go func() { s.output.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(3 * time.Second):
	}
	st.OOMKilled = s.oomKills() > 0
	if s.console != nil {
		_ = s.console.Close()
	}
	s.stdinMu.Lock()
	if s.stdin != nil {
		_ = s.stdin.Close()
		s.stdin = nil
	}
	s.stdinMu.Unlock()
	close(s.outputDone)
	s.exit = st
	close(s.exitKnown)

	if err := s.container.Destroy(); err != nil {
		fmt.Fprintln(os.Stderr, "fusebox shim: destroy container:", err)
	}
	s.removeRuntimeFiles()
	// Last, so that a daemon that finds the exit recorded (ReadExitStatus)
	// finds the runtime files gone.
	if err := s.writeExit(); err != nil {
		fmt.Fprintln(os.Stderr, "fusebox shim:", err)
	}
	close(s.exited)
}

// oomKills reads how many processes the kernel's OOM killer killed in the
// container's memory cgroup: the oom_kill line of memory.oom_control
// (cgroup v1) or memory.events (v2). Reading the counter, rather than
// listening for events, costs nothing on the exit path and can't miss a
// kill that happened just before the exit.
func (s *shim) oomKills() int {
	st, err := s.container.State()
	if err != nil {
		return 0
	}
	var files []string
	if dir, ok := st.CgroupPaths["memory"]; ok {
		files = append(files, filepath.Join(dir, "memory.oom_control"))
	}
	if dir, ok := st.CgroupPaths[""]; ok {
		files = append(files, filepath.Join(dir, "memory.events"))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				var n int
				if _, err := fmt.Sscanf(v, "%d", &n); err == nil {
					return n
				}
			}
		}
	}
	return 0
}

// removeRuntimeFiles removes what only a live container needs from the
// state directory: libcontainer's state, the shim config and the files
// bind-mounted into /etc. The exit status and the log stay for the daemon;
// the socket and pid file go when the shim exits.
func (s *shim) removeRuntimeFiles() {
	for _, name := range []string{runcDir, ConfigFile, HostnameFile, HostsFile, ResolvConfFile} {
		if err := os.RemoveAll(filepath.Join(s.stateDir, name)); err != nil {
			fmt.Fprintln(os.Stderr, "fusebox shim:", err)
		}
	}
}

func (s *shim) writeExit() error {
	b, err := json.Marshal(s.exit)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.stateDir, ExitFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("record exit status: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.stateDir, ExitFile)); err != nil {
		return fmt.Errorf("record exit status: %w", err)
	}
	return nil
}

func exitStatus(ps *os.ProcessState, err error) ExitStatus {
	if ps == nil {
		msg := "wait: unknown error"
		if err != nil {
			msg = "wait: " + err.Error()
		}
		return ExitStatus{ExitCode: 128, Error: msg}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return ExitStatus{ExitCode: 128 + int(ws.Signal()), Signal: int(ws.Signal())}
	}
	return ExitStatus{ExitCode: ps.ExitCode()}
}

func (s *shim) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			s.serve(conn)
		}()
	}
}

func (s *shim) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	var req request
	if err := readJSONLine(br, &req); err != nil {
		return
	}
	reply := func(r response) { _ = writeJSONLine(conn, r) }
	fail := func(err error) { reply(response{Error: err.Error()}) }
	select {
	case <-s.exitKnown:
		// After the exit only the recorded status is left to give.
		switch req.Op {
		case opWait, opState:
		default:
			fail(ErrNotRunning)
			return
		}
	default:
	}
	switch req.Op {
	case opAttach:
		s.attach(conn, br, req)
	case opBegin:
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.started.IsZero() {
			fail(errors.New("container already started"))
			return
		}
		pid, _ := s.process.Pid()
		before, _ := exeID(pid)
		if err := s.container.Exec(); err != nil {
			fail(fmt.Errorf("start container: %w", err))
			return
		}
		s.started = time.Now().UTC()
		waitExec(pid, before)
		reply(response{})
	case opResize:
		f := s.console
		if req.ExecID != "" {
			s.mu.Lock()
			f = s.execs[req.ExecID]
			s.mu.Unlock()
		}
		if f == nil {
			fail(ErrNoTTY)
			return
		}
		if err := pty.Setsize(f, &pty.Winsize{Cols: req.Width, Rows: req.Height}); err != nil {
			fail(fmt.Errorf("resize tty: %w", err))
			return
		}
		reply(response{})
	case opSignal:
		if err := s.container.Signal(unix.Signal(req.Signal)); err != nil {
			// A process that died and was reaped, whose exit is not
			// recorded yet, is not running either.
			if errors.Is(err, libcontainer.ErrNotRunning) || errors.Is(err, os.ErrProcessDone) {
				fail(ErrNotRunning)
				return
			}
			fail(fmt.Errorf("signal container: %w", err))
			return
		}
		reply(response{})
	case opPause:
		if err := s.container.Pause(); err != nil {
			fail(fmt.Errorf("pause container: %w", err))
			return
		}
		reply(response{})
	case opResume:
		if err := s.container.Resume(); err != nil {
			fail(fmt.Errorf("unpause container: %w", err))
			return
		}
		reply(response{})
	case opWait:
		<-s.exitKnown
		st := s.exit
		reply(response{Exit: &st})
	case opState:
		reply(response{State: s.state()})
	case opTop:
		pids, err := s.container.Processes()
		if err != nil {
			fail(fmt.Errorf("list processes: %w", err))
			return
		}
		reply(response{Pids: pids})
	case opStats:
		st, err := s.stats()
		if err != nil {
			fail(err)
			return
		}
		reply(response{Stats: st})
	case opExec:
		if status, err := s.container.Status(); err == nil && status == libcontainer.Paused {
			fail(ErrPaused)
			return
		}
		s.exec(conn, br, req)
	default:
		fail(fmt.Errorf("unknown shim call %q", req.Op))
	}
}

func (s *shim) state() *State {
	st := &State{ID: s.cfg.ID, ShimPid: os.Getpid(), Status: "stopped"}
	select {
	case <-s.exitKnown:
		return st
	default:
	}
	if pid, err := s.process.Pid(); err == nil {
		st.Pid = pid
	}
	if status, err := s.container.Status(); err == nil {
		st.Status = status.String()
	}
	s.mu.Lock()
	st.Started = s.started
	s.mu.Unlock()
	return st
}

func (s *shim) stats() (*Stats, error) {
	ls, err := s.container.Stats()
	if err != nil {
		return nil, fmt.Errorf("container stats: %w", err)
	}
	st := &Stats{Read: time.Now().UTC()}
	if cg := ls.CgroupStats; cg != nil {
		st.CPUTotal = cg.CpuStats.CpuUsage.TotalUsage
		st.CPUKernel = cg.CpuStats.CpuUsage.UsageInKernelmode
		st.CPUUser = cg.CpuStats.CpuUsage.UsageInUsermode
		st.PerCPU = cg.CpuStats.CpuUsage.PercpuUsage
		st.MemoryUsage = cg.MemoryStats.Usage.Usage
		st.MemoryMax = cg.MemoryStats.Usage.MaxUsage
		st.MemoryLimit = cg.MemoryStats.Usage.Limit
		st.MemoryDetails = cg.MemoryStats.Stats
		st.PidsCurrent = cg.PidsStats.Current
		st.PidsLimit = cg.PidsStats.Limit
		for _, b := range cg.BlkioStats.IoServiceBytesRecursive {
			st.Blkio = append(st.Blkio, BlkioEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
		}
	}
	return st, nil
}

// attach subscribes conn to the output streams asked for and feeds the
// command's stdin from it, until the output ends.
func (s *shim) attach(conn net.Conn, br *bufio.Reader, req request) {
	sub := &subscriber{conn: conn, stdout: req.Stdout, stderr: req.Stderr}
	if s.console != nil {
		sub.stderr = false // a tty has one stream
	}
	// Registered before the answer, so that the caller's Begin after
	// Attach returns can't run ahead of it. Holding subMu also keeps
	// output frames from overtaking the answer.
	s.subMu.Lock()
	s.subs[sub] = struct{}{}
	err := writeJSONLine(conn, response{})
	s.subMu.Unlock()
	defer func() {
		s.subMu.Lock()
		delete(s.subs, sub)
		s.subMu.Unlock()
	}()
	if err != nil {
		return
	}
	clientGone := make(chan struct{})
	if req.Stdin {
		go func() {
			defer close(clientGone)
			if s.console != nil {
				_, _ = io.Copy(s.console, br)
				return
			}
			s.stdinMu.Lock()
			w := s.stdin
			s.stdinMu.Unlock()
			if w == nil {
				_, _ = io.Copy(io.Discard, br)
				return
			}
			_, _ = io.Copy(w, br)
			if req.CloseStdin {
				s.stdinMu.Lock()
				if s.stdin != nil {
					_ = s.stdin.Close()
					s.stdin = nil
				}
				s.stdinMu.Unlock()
			}
		}()
	}
	if !req.Stdout && !req.Stderr && req.Stdin {
		// Only stdin: done when the client is.
		select {
		case <-clientGone:
		case <-s.outputDone:
		}
		return
	}
	<-s.outputDone
}

// ensureWorkdir creates the working directory in the rootfs when it is
// missing, as Docker does for an image's WORKDIR or `-w`. The shim does it
// rather than the daemon because the rootfs may be the daemon's own FUSE
// mount.
func ensureWorkdir(spec *specs.Spec) error {
	dir, err := securejoin.SecureJoin(spec.Root.Path, spec.Process.Cwd)
	if err != nil {
		return fmt.Errorf("resolve working directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("working directory %s is not a directory", spec.Process.Cwd)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("working directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create working directory: %w", err)
	}
	return nil
}

// exeID identifies the executable a process runs.
func exeID(pid int) ([2]uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/exe", pid), &st); err != nil {
		return [2]uint64{}, err
	}
	return [2]uint64{st.Dev, st.Ino}, nil
}

// waitExec waits until the container's init has exec'd the command, so
// that a signal sent after Begin reaches the command rather than
// libcontainer's init (a Go program, which dies with status 2 on SIGTERM).
// A process that exits first, or a slow exec, ends the wait.
func waitExec(pid int, before [2]uint64) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		id, err := exeID(pid)
		if err != nil || id != before {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func sockPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socket pair: %w", err)
	}
	return os.NewFile(uintptr(fds[1]), "console-p"), os.NewFile(uintptr(fds[0]), "console-c"), nil
}

// recvConsole receives the pty master that the container's init sends over
// the console socket, and closes the socket.
func recvConsole(sock *os.File) (*os.File, error) {
	defer sock.Close()
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("recvmsg", err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("parse console message: %w", err)
		}
		if len(msgs) != 1 {
			return nil, fmt.Errorf("console message: got %d control messages", len(msgs))
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil {
			return nil, fmt.Errorf("parse console message: %w", err)
		}
		if len(fds) != 1 {
			for _, fd := range fds {
				_ = unix.Close(fd)
			}
			return nil, fmt.Errorf("console message: got %d descriptors", len(fds))
		}
		return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
	}
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// withoutSeccomp is spec without its seccomp profile, spec unchanged.
func withoutSeccomp(spec *specs.Spec) *specs.Spec {
	linux := *spec.Linux
	linux.Seccomp = nil
	out := *spec
	out.Linux = &linux
	return &out
}

// newProcess turns a spec's process into libcontainer's.
func newProcess(p *specs.Process) (*libcontainer.Process, error) {
	lp := &libcontainer.Process{
		Args:            p.Args,
		Env:             p.Env,
		UID:             int(p.User.UID),
		GID:             int(p.User.GID),
		Cwd:             p.Cwd,
		NoNewPrivileges: &p.NoNewPrivileges,
	}
	if p.ConsoleSize != nil {
		lp.ConsoleWidth = uint16(p.ConsoleSize.Width)
		lp.ConsoleHeight = uint16(p.ConsoleSize.Height)
	}
	if c := p.Capabilities; c != nil {
		lp.Capabilities = &configs.Capabilities{
			Bounding: c.Bounding, Effective: c.Effective, Permitted: c.Permitted,
			Inheritable: c.Inheritable, Ambient: c.Ambient,
		}
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	for _, rl := range p.Rlimits {
		t, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		lp.Rlimits = append(lp.Rlimits, configs.Rlimit{Type: t, Hard: rl.Hard, Soft: rl.Soft})
	}
	return lp, nil
}

var rlimitTypes = map[string]int{
	"RLIMIT_NOFILE":  unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":   unix.RLIMIT_NPROC,
	"RLIMIT_CORE":    unix.RLIMIT_CORE,
	"RLIMIT_STACK":   unix.RLIMIT_STACK,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
}

// startError classifies libcontainer's start error as Docker does: a
// command that isn't there is 127, one that can't be run is 126.
func startError(err error) *StartError {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return newStartError(127, msg)
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"), strings.Contains(msg, "exec format error"):
		return newStartError(126, msg)
	}
	return newStartError(128, msg)
}

// shimExeName is this binary's path, for messages.
func shimExeName() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return os.Args[0]
}
