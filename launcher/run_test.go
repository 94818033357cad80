package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// capMask is the /proc/<pid>/status bit mask of the named capabilities.
func capMask(names []string) string {
	var m uint64
	for _, n := range names {
		for i, c := range capNames {
			if c == n {
				m |= 1 << uint(i)
			}
		}
	}
	return fmt.Sprintf("%016x", m)
}

func TestExitCodes(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"true", []string{"true"}, 0},
		{"false", []string{"false"}, 1},
		{"three", []string{"sh", "-c", "exit 3"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runContainer(t, container{opts: Options{Args: tc.args}})
			if r.exit.ExitCode != tc.code {
				t.Fatalf("exit %+v, want code %d", r.exit, tc.code)
			}
			if r.exit.Finished.IsZero() || time.Since(r.exit.Finished) > time.Minute {
				t.Fatalf("finish time %v", r.exit.Finished)
			}
		})
	}
}

func TestCommandCannotStart(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		sentinel error
	}{
		{"not found", []string{"no-such-command"}, 127, ErrCommandNotFound},
		{"no such path", []string{"/bin/no-such-file"}, 127, ErrCommandNotFound},
		{"not executable", []string{"/etc/noexec"}, 126, ErrCommandNotRunnable},
		{"directory", []string{"/etc"}, 126, ErrCommandNotRunnable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, cfg, err := startContainer(t, ctx, container{opts: Options{Args: tc.args}})
			if err == nil {
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, tc.sentinel) || ExitCode(err) != tc.code {
				t.Fatalf("err %v (code %d), want %v and %d", err, ExitCode(err), tc.sentinel, tc.code)
			}
			st, err := ReadExitStatus(cfg.StateDir)
			if err != nil || st.ExitCode != tc.code || st.Error == "" {
				t.Fatalf("recorded %+v, %v", st, err)
			}
			assertCleanedUp(t, cfg)
		})
	}
}

func TestInsideContainer(t *testing.T) {
	needRoot(t)
	rootfs := busyboxRootfs(t)
	app, err := ResolveUser(rootfs, "app")
	if err != nil {
		t.Fatal(err)
	}
	numeric, err := ResolveUser(rootfs, "1000:2000")
	if err != nil {
		t.Fatal(err)
	}
	nofile, err := nofileLimit()
	if err != nil {
		t.Fatal(err)
	}
	bnd, _ := boundingSet()
	for _, tc := range []struct {
		name string
		opts Options
		cmd  string
		want string
	}{
		{"echo", Options{}, "echo hello", "hello"},
		{"env", Options{Env: []string{"FOO=bar baz"}}, `echo "$FOO|$HOME|$HOSTNAME"`, "bar baz|/|myhost"},
		{"default path", Options{}, `echo $PATH`, DefaultPath},
		{"cwd", Options{Cwd: "/tmp"}, "pwd", "/tmp"},
		{"hostname", Options{}, "hostname; cat /etc/hostname", "myhost\nmyhost"},
		{"user by name", Options{User: app}, "id; echo $HOME", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n/home/app"},
		{"user by number", Options{User: numeric}, "id -u; id -g", "1000\n2000"},
		{"memory", Options{Memory: 64 << 20}, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes", "67108864"},
		{"cpu shares", Options{CPUShares: 512}, "cat /sys/fs/cgroup/cpu/cpu.shares", "512"},
		{"cpuset", Options{CpusetCpus: "0"}, "cat /sys/fs/cgroup/cpuset/cpuset.cpus", "0"},
		{"pids limit", Options{PidsLimit: 50}, "cat /sys/fs/cgroup/pids/pids.max", "50"},
		{"nofile", Options{}, "ulimit -n", fmt.Sprint(nofile)},
		{"read-only rootfs", Options{ReadOnly: true}, "touch /x 2>&1 || echo refused; touch /tmp/y 2>/dev/null || echo refused too", "touch: /x: Read-only file system\nrefused\nrefused too"},
		{"writable rootfs", Options{}, "touch /x && echo wrote", "wrote"},
		{"capabilities", Options{}, "grep CapEff /proc/self/status", "CapEff:\t" + capMask(defaultCapabilities)},
		{"privileged capabilities", Options{Privileged: true}, "grep CapEff /proc/self/status", fmt.Sprintf("CapEff:\t%016x", bnd)},
		{"masked timer_list", Options{}, "wc -c < /proc/timer_list; grep -c ' /proc/keys ' /proc/mounts", "0\n1"},
		{"read-only proc sys", Options{}, "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo refused", "refused"},
		{"sys read-only", Options{}, "grep ' /sys ' /proc/mounts | grep -c ' ro,'", "1"},
		{"privileged sys", Options{Privileged: true}, "grep ' /sys ' /proc/mounts | grep -c ' rw,'", "1"},
		{"mounts", Options{}, "for m in /proc /dev /dev/pts /dev/shm /dev/mqueue /sys /etc/hosts /etc/resolv.conf /etc/hostname; do grep -q \" $m \" /proc/mounts && echo -n .; done", "........."},
		{"network", Options{}, "ls /sys/class/net", "lo"},
		{"devices", Options{}, "head -c 3 /dev/zero | wc -c; echo x > /dev/null && echo null; test -e /dev/fuse || echo no fuse", "3\nnull\nno fuse"},
		{"privileged devices", Options{Privileged: true}, "test -c /dev/fuse && echo fuse; ls /dev/pts", "fuse\nptmx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.opts
			o.Hostname = "myhost"
			o.Args = []string{"sh", "-c", tc.cmd}
			r := runContainer(t, container{opts: o, rootfs: rootfs})
			if got := strings.TrimSpace(r.stdout); got != tc.want || r.exit.ExitCode != 0 {
				t.Fatalf("got %q (stderr %q, exit %+v), want %q", got, r.stderr, r.exit, tc.want)
			}
		})
	}
}

func TestStdinPiped(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sh", "-c", "cat; echo done"}}, openStdin: true})
	if err != nil {
		t.Fatal(err)
	}
	r := attachRun(t, ctx, s, bytes.NewBufferString("hello\nworld\n"))
	if r.stdout != "hello\nworld\ndone\n" || r.exit.ExitCode != 0 {
		t.Fatalf("got %q exit %+v", r.stdout, r.exit)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a stream writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTTY(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, cfg, err := startContainer(t, ctx, container{
		opts:      Options{Args: []string{"sh"}, Tty: true, ConsoleWidth: 100, ConsoleHeight: 30},
		openStdin: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	var out syncBuffer
	a, err := s.Attach(ctx, Stdio{Stdin: stdinR, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	// Type a command, as a user would.
	if _, err := io.WriteString(stdinW, "stty size; tty; echo $TERM\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first answers", 10*time.Second, func() bool {
		o := out.String()
		return strings.Contains(o, "30 100\r\n") && strings.Contains(o, "/dev/pts/0\r\n") && strings.Contains(o, "xterm\r\n")
	})
	if err := s.Resize(ctx, 120, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdinW, "stty size; exit 5\n"); err != nil {
		t.Fatal(err)
	}
	st, err := s.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stdinW.Close()
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if st.ExitCode != 5 || !strings.Contains(out.String(), "40 120\r\n") {
		t.Fatalf("exit %+v, output %q", st, out.String())
	}
	// The log has the tty's output as stdout.
	var logged strings.Builder
	err = ReadLogs(ctx, filepath.Join(cfg.StateDir, LogFile), LogOptions{Tail: -1}, func(e LogEntry) error {
		if e.Stream != "stdout" {
			return fmt.Errorf("tty output on stream %q", e.Stream)
		}
		logged.WriteString(e.Log)
		return nil
	})
	if err != nil || !strings.Contains(logged.String(), "40 120") {
		t.Fatalf("log %q, %v", logged.String(), err)
	}
}

func TestStop(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name    string
		cmd     string
		code    int
		minTime time.Duration
	}{
		// PID 1 without a handler ignores SIGTERM: SIGKILL after the timeout.
		{"ignored", "sleep 100", 137, time.Second},
		{"handled", `trap "exit 42" TERM; echo ready; while true; do usleep 20000; done`, 42, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, _, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sh", "-c", tc.cmd}}})
			if err != nil {
				t.Fatal(err)
			}
			var out syncBuffer
			if _, err := s.Attach(ctx, Stdio{Stdout: &out}); err != nil {
				t.Fatal(err)
			}
			if err := s.Begin(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.code == 42 {
				waitFor(t, "the trap", 10*time.Second, func() bool { return out.String() == "ready\n" })
			}
			start := time.Now()
			st, err := s.Stop(ctx, syscall.SIGTERM, time.Second)
			took := time.Since(start)
			if err != nil || st.ExitCode != tc.code {
				t.Fatalf("stop: %+v, %v", st, err)
			}
			if took < tc.minTime || took > tc.minTime+10*time.Second {
				t.Fatalf("stop took %v", took)
			}
		})
	}
}

func TestPause(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := container{opts: Options{Args: []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; usleep 10000; done"}}}
	c.rootfs = busyboxRootfs(t)
	s, _, err := startContainer(t, ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	count := func() string {
		b, _ := os.ReadFile(filepath.Join(c.rootfs, "tmp/count"))
		return string(b)
	}
	waitFor(t, "the counter", 10*time.Second, func() bool { return count() > "" })
	if err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.State(ctx); err != nil || st.Status != "paused" {
		t.Fatalf("state %+v, %v", st, err)
	}
	if _, err := s.Exec(ctx, ExecConfig{Args: []string{"true"}}, Stdio{}); !errors.Is(err, ErrPaused) {
		t.Fatalf("exec while paused: %v", err)
	}
	frozen := count()
	time.Sleep(300 * time.Millisecond)
	if now := count(); now != frozen {
		t.Fatalf("counter moved while paused: %q → %q", frozen, now)
	}
	if err := s.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the counter to move again", 10*time.Second, func() bool { return count() != frozen })
	// A paused container still dies on SIGKILL.
	if err := s.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Signal(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Wait(ctx); err != nil || st.ExitCode != 137 {
		t.Fatalf("exit %+v, %v", st, err)
	}
}

func TestLogs(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, cfg, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sh", "-c", "echo out1; echo err1 >&2; usleep 200000; echo out2; printf partial"}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.StateDir, LogFile)
	// Follow from before the start; Done closes when the container exits.
	done := make(chan struct{})
	followed := make(chan []LogEntry, 1)
	go func() {
		var got []LogEntry
		err := ReadLogs(ctx, path, LogOptions{Tail: -1, Follow: true, Done: done}, func(e LogEntry) error {
			got = append(got, e)
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		followed <- got
	}()
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	close(done)
	got := <-followed
	// stdout and stderr are separate pipes, so only each stream's own
	// order is certain.
	var out, errs []string
	for _, e := range got {
		if e.Time.IsZero() {
			t.Fatalf("entry without a time: %+v", e)
		}
		switch e.Stream {
		case "stdout":
			out = append(out, e.Log)
		case "stderr":
			errs = append(errs, e.Log)
		default:
			t.Fatalf("stream %q", e.Stream)
		}
	}
	if strings.Join(out, "|") != "out1\n|out2\n|partial" || strings.Join(errs, "|") != "err1\n" {
		t.Fatalf("followed stdout %q stderr %q", out, errs)
	}

	// The file is Docker's json-file format, line by line.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[len(lines)-1], `{"log":"partial","stream":"stdout","time":"`) {
		t.Fatalf("log file:\n%s", raw)
	}

	read := func(o LogOptions) []string {
		var got []string
		if err := ReadLogs(ctx, path, o, func(e LogEntry) error {
			got = append(got, string(e.Bytes(false)))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := read(LogOptions{Tail: 1}); len(got) != 1 || got[0] != "partial" {
		t.Fatalf("tail 1: %q", got)
	}
	if got := read(LogOptions{Tail: 0}); len(got) != 0 {
		t.Fatalf("tail 0: %q", got)
	}
	out2 := got[len(got)-2].Time
	if got := read(LogOptions{Tail: -1, Since: out2}); len(got) != 2 {
		t.Fatalf("since: %q", got)
	}
	if got := read(LogOptions{Tail: -1, Until: out2.Add(-time.Nanosecond)}); len(got) != 2 {
		t.Fatalf("until: %q", got)
	}
	var first LogEntry
	for _, e := range got {
		if e.Stream == "stdout" {
			first = e
			break
		}
	}
	ts := string(first.Bytes(true))
	if _, err := time.Parse(time.RFC3339Nano, strings.Fields(ts)[0]); err != nil || !strings.HasSuffix(ts, " out1\n") {
		t.Fatalf("timestamped %q: %v", ts, err)
	}
}

func TestExec(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sleep", "100"}, Env: []string{"FOO=container"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	run := func(cfg ExecConfig, stdin io.Reader) (string, string, ExitStatus) {
		t.Helper()
		var out, errs bytes.Buffer
		e, err := s.Exec(ctx, cfg, Stdio{Stdin: stdin, Stdout: &out, Stderr: &errs})
		if err != nil {
			t.Fatalf("exec %v: %v", cfg.Args, err)
		}
		st, err := e.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), errs.String(), st
	}
	out, errs, st := run(ExecConfig{Args: []string{"sh", "-c", "echo $FOO $BAR; id -un; pwd; echo e >&2; exit 7"}, Env: []string{"BAR=exec"}, User: "app", Cwd: "/tmp"}, nil)
	if out != "container exec\napp\n/tmp\n" || errs != "e\n" || st.ExitCode != 7 {
		t.Fatalf("exec: %q %q %+v", out, errs, st)
	}
	out, _, st = run(ExecConfig{Args: []string{"cat"}, Stdin: true}, strings.NewReader("piped\n"))
	if out != "piped\n" || st.ExitCode != 0 {
		t.Fatalf("exec -i: %q %+v", out, st)
	}
	out, _, st = run(ExecConfig{ID: "tty1", Args: []string{"sh", "-c", "stty size; tty"}, Tty: true, ConsoleWidth: 90, ConsoleHeight: 20}, nil)
	if !strings.Contains(out, "20 90\r\n") || !strings.Contains(out, "/dev/pts/") || st.ExitCode != 0 {
		t.Fatalf("exec -t: %q %+v", out, st)
	}
	if _, err := s.Exec(ctx, ExecConfig{Args: []string{"nope"}}, Stdio{}); !errors.Is(err, ErrCommandNotFound) || ExitCode(err) != 127 {
		t.Fatalf("exec of a missing command: %v", err)
	}
	if _, err := s.Exec(ctx, ExecConfig{Args: []string{"true"}, User: "nosuchuser"}, Stdio{}); err == nil || !strings.Contains(err.Error(), "unable to find user nosuchuser") {
		t.Fatalf("exec as an unknown user: %v", err)
	}

	// top and stats see the container's processes.
	pids, err := s.Processes(ctx)
	if err != nil || len(pids) != 1 || pids[0] != s.Pid() {
		t.Fatalf("processes %v (init %d), %v", pids, s.Pid(), err)
	}
	stats, err := s.Stats(ctx)
	if err != nil || stats.PidsCurrent != 1 || stats.MemoryUsage == 0 || stats.CPUTotal == 0 {
		t.Fatalf("stats %+v, %v", stats, err)
	}
	if _, err := s.Stop(ctx, syscall.SIGTERM, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

// assertCleanedUp checks that nothing of an exited container is left but
// its exit status and log: no cgroups, no libcontainer state, no shim.
func assertCleanedUp(t *testing.T, cfg Config) {
	t.Helper()
	waitFor(t, "the shim to exit", 10*time.Second, func() bool {
		return !fileExists(filepath.Join(cfg.StateDir, SocketFile)) && !fileExists(filepath.Join(cfg.StateDir, PidFile))
	})
	for _, ctrl := range []string{"memory", "cpu", "cpuset", "pids", "freezer", "devices", "blkio"} {
		if p := filepath.Join("/sys/fs/cgroup", ctrl, CgroupPath(cfg.ID)); fileExists(p) {
			t.Errorf("cgroup %s left", p)
		}
	}
	entries, err := os.ReadDir(cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case ExitFile, LogFile:
		case ShimLog:
			// Kept only when the shim had something to say, such as
			// libcontainer's warnings on a loaded machine; never a crash.
			b, _ := os.ReadFile(filepath.Join(cfg.StateDir, e.Name()))
			if bytes.Contains(b, []byte("panic")) || bytes.Contains(b, []byte("DATA RACE")) {
				t.Errorf("shim log:\n%s", b)
			} else {
				t.Logf("shim log: %s", b)
			}
		default:
			t.Errorf("state dir has %s left", e.Name())
		}
	}
}

func TestCleanupAndReconnect(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, cfg, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sh", "-c", "read x; exit 4"}}, openStdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	// A daemon that restarted finds the shim again.
	again, err := Connect(ctx, cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := again.State(ctx); err != nil || st.Status != "running" || st.Pid != s.Pid() || again.ID() != cfg.ID {
		t.Fatalf("state %+v, %v", st, err)
	}
	for _, ctrl := range []string{"memory", "pids", "freezer"} {
		if p := filepath.Join("/sys/fs/cgroup", ctrl, "fusebox", cfg.ID); !fileExists(p) {
			t.Fatalf("no cgroup %s while running", p)
		}
	}
	if _, err := Start(ctx, cfg); !errors.Is(err, ErrRunning) {
		t.Fatalf("second start: %v", err)
	}
	a, err := again.Attach(ctx, Stdio{Stdin: strings.NewReader("go\n"), CloseStdin: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := again.Wait(ctx)
	if err != nil || st.ExitCode != 4 {
		t.Fatalf("exit %+v, %v", st, err)
	}
	_ = a.Wait()
	assertCleanedUp(t, cfg)
	if err := s.Signal(ctx, syscall.SIGTERM); !errors.Is(err, ErrShimGone) {
		t.Fatalf("signal after exit: %v", err)
	}
	// Once the shim is gone, the status is still there.
	if _, err := Connect(ctx, cfg.StateDir); !errors.Is(err, ErrShimGone) {
		t.Fatalf("connect after exit: %v", err)
	}
	if st, err := s.Wait(ctx); err != nil || st.ExitCode != 4 {
		t.Fatalf("wait after the shim exited: %+v, %v", st, err)
	}
	if st, err := ReadExitStatus(cfg.StateDir); err != nil || st.ExitCode != 4 {
		t.Fatalf("recorded %+v, %v", st, err)
	}
}

func TestConcurrentContainers(t *testing.T) {
	needRoot(t)
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rootfs := busyboxRootfs(t)
	type outcome struct {
		i   int
		out string
		st  ExitStatus
		cfg Config
		err error
	}
	results := make(chan outcome, n)
	for i := range n {
		go func() {
			o := outcome{i: i}
			defer func() { results <- o }()
			var s *Shim
			s, o.cfg, o.err = startContainer(t, ctx, container{rootfs: rootfs, opts: Options{Args: []string{"sh", "-c", fmt.Sprintf("echo c%d; exit %d", i, i)}}})
			if o.err != nil {
				return
			}
			var out syncBuffer
			a, err := s.Attach(ctx, Stdio{Stdout: &out})
			if err != nil {
				o.err = err
				return
			}
			if o.err = s.Begin(ctx); o.err != nil {
				return
			}
			if o.st, o.err = s.Wait(ctx); o.err != nil {
				return
			}
			o.err = a.Wait()
			o.out = out.String()
		}()
	}
	for range n {
		o := <-results
		if o.err != nil {
			t.Errorf("container %d: %v", o.i, o.err)
			continue
		}
		if o.out != fmt.Sprintf("c%d\n", o.i) || o.st.ExitCode != o.i {
			t.Errorf("container %d: output %q exit %+v", o.i, o.out, o.st)
		}
		assertCleanedUp(t, o.cfg)
	}
}

func TestInit(t *testing.T) {
	needRoot(t)
	if !fileExists(DefaultInitPath) {
		t.Skip("--init needs " + DefaultInitPath + " (Debian's tini)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Under the init, the command is not PID 1, so SIGTERM without a
	// handler kills it at once: exit 143, no wait for SIGKILL.
	s, _, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; sleep 100"}, Init: true}})
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	if _, err := s.Attach(ctx, Stdio{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the command", 10*time.Second, func() bool { return strings.Contains(out.String(), "\n") })
	if got := out.String(); !strings.HasPrefix(got, "/sbin/docker-init -- sh -c ") {
		t.Fatalf("pid 1 is %q", got)
	}
	start := time.Now()
	st, err := s.Stop(ctx, syscall.SIGTERM, 10*time.Second)
	if err != nil || st.ExitCode != 143 || time.Since(start) > 5*time.Second {
		t.Fatalf("stop: %+v, %v after %v", st, err, time.Since(start))
	}
}

func TestMissingWorkdirIsCreated(t *testing.T) {
	needRoot(t)
	r := runContainer(t, container{opts: Options{Args: []string{"pwd"}, Cwd: "/new/work/dir"}})
	if r.stdout != "/new/work/dir\n" || r.exit.ExitCode != 0 {
		t.Fatalf("got %q %+v", r.stdout, r.exit)
	}
}

func TestOOMKilled(t *testing.T) {
	needRoot(t)
	// The shell keeps a command's output in memory: far past 8 MiB.
	r := runContainer(t, container{opts: Options{Memory: 8 << 20, Args: []string{"sh", "-c", `x=$(head -c 100000000 /dev/zero | tr '\0' a); echo ${#x}`}}})
	if r.exit.ExitCode != 137 || !r.exit.OOMKilled {
		t.Fatalf("exit %+v", r.exit)
	}
	r = runContainer(t, container{opts: Options{Memory: 8 << 20, Args: []string{"true"}}})
	if r.exit.ExitCode != 0 || r.exit.OOMKilled {
		t.Fatalf("exit %+v", r.exit)
	}
}

// TestFUSERootfs runs containers on a rootfs served over FUSE (Debian's
// fuse-overlayfs), as the daemon's will be: the shim's working directory is
// off the mount, and what the containers write lands in the upper dir.
func TestFUSERootfs(t *testing.T) {
	needRoot(t)
	bin, err := exec.LookPath("fuse-overlayfs")
	if err != nil || !fileExists("/dev/fuse") {
		t.Skip("needs fuse-overlayfs and /dev/fuse")
	}
	lower := busyboxRootfs(t)
	dir := t.TempDir()
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,allow_other", lower, upper, work)
	if out, err := exec.Command(bin, "-o", opts, merged).CombinedOutput(); err != nil {
		t.Fatalf("fuse-overlayfs: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", merged).CombinedOutput(); err != nil {
			t.Errorf("umount: %v\n%s", err, out)
		}
	})
	const n = 5
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, _, err := startContainer(t, ctx, container{rootfs: merged, opts: Options{Args: []string{"sh", "-c", fmt.Sprintf("echo %d > /tmp/f%d && cat /tmp/f%d", i, i, i)}}})
			if err != nil {
				t.Errorf("start %d: %v", i, err)
				return
			}
			var out syncBuffer
			a, err := s.Attach(ctx, Stdio{Stdout: &out})
			if err != nil {
				t.Errorf("attach %d: %v", i, err)
				return
			}
			if err := s.Begin(ctx); err != nil {
				t.Errorf("begin %d: %v", i, err)
				return
			}
			st, err := s.Wait(ctx)
			_ = a.Wait()
			if err != nil || st.ExitCode != 0 || out.String() != fmt.Sprintf("%d\n", i) {
				t.Errorf("container %d: %q %+v %v", i, out.String(), st, err)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if b, err := os.ReadFile(filepath.Join(upper, "tmp", fmt.Sprintf("f%d", i))); err != nil || string(b) != fmt.Sprintf("%d\n", i) {
			t.Errorf("upper f%d: %q %v", i, b, err)
		}
	}
}

// TestShimKilled: a shim told to stop takes its container down with it and
// still cleans up, so nothing runs unsupervised.
func TestShimKilled(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, cfg, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sleep", "100"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.ShimPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exit, err := s.Wait(ctx)
	if err != nil || exit.ExitCode != 137 {
		t.Fatalf("exit %+v, %v", exit, err)
	}
	assertCleanedUp(t, cfg)
}

// TestCleanup covers what a daemon coming back finds: a shim still
// running, a shim that was killed and left its container running, and a
// container that exited long ago.
func TestCleanup(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name     string
		killShim bool
		exited   bool
		code     int
		lost     bool
	}{
		{"live shim", false, false, 137, false},
		{"lost shim", true, false, 137, true},
		{"exited", false, true, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := []string{"sleep", "100"}
			if tc.exited {
				args = []string{"true"}
			}
			s, cfg, err := startContainer(t, ctx, container{opts: Options{Args: args}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Begin(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.exited {
				if _, err := s.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tc.killShim {
				st, err := s.State(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := syscall.Kill(st.ShimPid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the shim to die", 10*time.Second, func() bool {
					_, err := s.State(ctx)
					return errors.Is(err, ErrShimGone)
				})
				if err := syscall.Kill(s.Pid(), 0); err != nil {
					t.Fatalf("the container died with its shim: %v", err)
				}
			}
			st, err := Cleanup(ctx, cfg.StateDir, cfg.ID)
			if err != nil || st.ExitCode != tc.code || (st.Error != "") != tc.lost {
				t.Fatalf("cleanup: %+v, %v", st, err)
			}
			if !tc.exited {
				waitFor(t, "the container to die", 10*time.Second, func() bool {
					b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.Pid()))
					// Gone, or a zombie of a process that isn't ours to reap.
					return len(b) == 0 || strings.Contains(string(b), ") Z ")
				})
			}
			assertCleanedUp(t, cfg)
		})
	}
}

// TestStartRightAfterExit: Wait answers before the shim has destroyed the
// container, and a start in the same state directory straight after waits
// for that shim to be gone instead of failing with ErrRunning; AwaitGone
// returns once it is, with the cgroups removed and the exit recorded.
func TestStartRightAfterExit(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, cfg, err := startContainer(t, ctx, container{opts: Options{Args: []string{"true"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Wait(ctx); err != nil || st.ExitCode != 0 {
		t.Fatalf("Wait: %+v, %v", st, err)
	}
	again, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start right after the exit: %v", err)
	}
	if err := again.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := again.Wait(ctx); err != nil || st.ExitCode != 0 {
		t.Fatalf("second Wait: %+v, %v", st, err)
	}
	if err := AwaitGone(ctx, cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	for _, ctrl := range []string{"memory", "pids", "freezer"} {
		if p := filepath.Join("/sys/fs/cgroup", ctrl, CgroupPath(cfg.ID)); fileExists(p) {
			t.Errorf("cgroup %s left after AwaitGone", p)
		}
	}
	if _, err := ReadExitStatus(cfg.StateDir); err != nil {
		t.Errorf("no exit recorded after AwaitGone: %v", err)
	}
}
