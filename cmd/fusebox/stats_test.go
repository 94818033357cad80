package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// statsFields is the format the streaming tests read: one table per
// redraw, its header the frame separator, a row per container.
const statsFields = "table {{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}"

const statsHeader = "NAME|CPU %|MEM USAGE / LIMIT|MEM %|NET I/O|BLOCK I/O|PIDS"

// statsRowOf is one container's line of a frame, parsed.
type statsRowOf struct {
	cpu, mem, limit, rx, tx float64
	pids                    int
	raw                     string
	invalid                 bool // dashes: its stats can't be read
}

// statsStream is a `fusebox stats` process whose stdout (not a terminal)
// is read frame by frame.
type statsStream struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	frames []map[string]statsRowOf
	raw    strings.Builder
	done   chan struct{}
	stderr strings.Builder
}

func (e *env) startStats(args ...string) *statsStream {
	e.t.Helper()
	s := &statsStream{t: e.t, cmd: e.fuseboxCmd(append([]string{"stats", "--format", statsFields}, args...)...), done: make(chan struct{})}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	s.cmd.Stderr = &lockedWriter{mu: &s.mu, w: &s.stderr}
	if err := s.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.done })
	go s.read(out)
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (s *statsStream) read(r io.Reader) {
	defer close(s.done)
	sc := bufio.NewScanner(r)
	var cur map[string]statsRowOf
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		s.raw.WriteString(line + "\n")
		if line == statsHeader {
			cur = map[string]statsRowOf{}
			s.frames = append(s.frames, cur)
		} else if cur != nil {
			if name, row, err := parseStatsRow(line); err != nil {
				s.t.Errorf("stats row %q: %v", line, err)
			} else {
				cur[name] = row
			}
		}
		s.mu.Unlock()
	}
}

func parseStatsRow(line string) (string, statsRowOf, error) {
	f := strings.Split(line, "|")
	if len(f) != 7 {
		return "", statsRowOf{}, errors.New("want 7 columns")
	}
	r := statsRowOf{raw: line}
	if f[1] == "--" {
		r.invalid = f[2] == "-- / --" && f[6] == "--"
		if !r.invalid {
			return "", r, errors.New("partly dashes")
		}
		return f[0], r, nil
	}
	var err error
	num := func(s string) float64 {
		v, e := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	pair := func(s string, parse func(string) (int64, error)) (float64, float64) {
		a, b, ok := strings.Cut(s, " / ")
		if !ok && err == nil {
			err = errors.New("no ' / ' in " + s)
		}
		x, e1 := parse(a)
		y, e2 := parse(b)
		if e := errors.Join(e1, e2); e != nil && err == nil {
			err = e
		}
		return float64(x), float64(y)
	}
	r.cpu = num(f[1])
	r.mem, r.limit = pair(f[2], units.RAMInBytes)
	num(f[3])
	r.rx, r.tx = pair(f[4], units.FromHumanSize)
	pair(f[5], units.FromHumanSize)
	r.pids = int(num(f[6]))
	return f[0], r, err
}

// since returns the frames after the first n.
func (s *statsStream) since(n int) []map[string]statsRowOf {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The last frame may be partly read: leave it out.
	if n >= len(s.frames)-1 {
		return nil
	}
	return append([]map[string]statsRowOf(nil), s.frames[n:len(s.frames)-1]...)
}

func (s *statsStream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames)
}

// await waits up to 30 s for a complete frame after the first n for which
// ok holds, and returns it.
func (s *statsStream) await(what string, n int, ok func(map[string]statsRowOf) bool) map[string]statsRowOf {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, f := range s.since(n) {
			if ok(f) {
				return f
			}
		}
		select {
		case <-s.done:
			s.t.Fatalf("stats exited while waiting for %s; stderr %q", what, s.errOut())
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Fatalf("no frame with %s in 30 s; output:\n%s", what, lastLines(s.raw.String(), 40))
	return nil
}

func (s *statsStream) errOut() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// interrupt sends SIGINT, as Ctrl-C does, and returns the exit status:
// 130 as docker's stats (128+SIGINT).
func (s *statsStream) interrupt() int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		s.t.Fatal(err)
	}
	<-s.done
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return 0
}

// withStatsBusybox is withBusybox whose containers are removed at the
// end, before the daemon stops: a test that fails midway leaves none
// running.
func withStatsBusybox(t *testing.T) *env {
	t.Helper()
	e := withBusybox(t)
	t.Cleanup(func() {
		if ids := strings.Fields(e.ok("ps", "-aq")); len(ids) > 0 {
			e.fusebox(append([]string{"rm", "-f"}, ids...)...)
		}
	})
	return e
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestStatsStreamFigures follows all running containers and checks each
// figure against what the containers do: one burns CPU, one idles, one
// fills 48 MiB of tmpfs, one has four processes, one serves 2 MB over
// the network, one reads and writes 8 MiB on a volume with O_DIRECT; a
// container started later appears, and goes once removed. Ctrl-C ends it
// with status 130, as docker's stats.
func TestStatsStreamFigures(t *testing.T) {
	e := withStatsBusybox(t)
	e.ok("run", "-d", "--name", "burn", "busybox", "sh", "-c", "while :; do :; done")
	e.ok("run", "-d", "--name", "idle", "busybox", "sleep", "1000")
	e.ok("run", "-d", "--name", "mem", "busybox", "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; dd if=/dev/zero of=/dev/shm/fill bs=1M count=48; sleep 1000")
	e.ok("run", "-d", "--name", "pids", "busybox", "sh", "-c", "sleep 1000 & sleep 1000 & sleep 1000 & wait")
	e.ok("run", "-d", "--name", "srv", "busybox", "sh", "-c", "dd if=/dev/zero of=/tmp/big bs=1k count=2048 2>/dev/null && httpd -f -p 80 -h /tmp")
	e.ok("run", "-d", "--name", "stopped", "busybox", "true")
	srvIP := strings.TrimSpace(e.ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv"))
	waitFor(t, "stopped to exit", func() bool { return e.ok("inspect", "-f", "{{.State.Status}}", "stopped") == "exited\n" })

	s := e.startStats()
	names := []string{"burn", "idle", "mem", "pids", "srv"}
	first := s.await("the five running containers", 0, func(f map[string]statsRowOf) bool {
		for _, n := range names {
			if _, ok := f[n]; !ok {
				return false
			}
		}
		return true
	})
	if _, ok := first["stopped"]; ok {
		t.Errorf("a stopped container is followed without -a: %+v", first)
	}
	// CPU: after a few samples the burner is well above 0 (it has one
	// CPU to itself at best; the machine is shared), the sleeper near 0.
	s.await("burn's CPU above 20% and idle's below 5%", 1, func(f map[string]statsRowOf) bool {
		b, okb := f["burn"]
		i, oki := f["idle"]
		return okb && oki && b.cpu > 20 && i.cpu < 5
	})
	if r := first["pids"]; r.pids != 4 {
		t.Errorf("pids: PIDS %d, want 4 (sh and three sleeps): %s", r.pids, r.raw)
	}
	if r := first["idle"]; r.pids != 1 {
		t.Errorf("idle: PIDS %d, want 1: %s", r.pids, r.raw)
	}
	if r := first["idle"]; r.limit <= 0 || r.mem <= 0 {
		t.Errorf("idle: memory %v of %v", r.mem, r.limit)
	}
	// Memory: the tmpfs file is counted (it is not inactive file cache).
	memBefore := first["mem"].mem
	e.ok("exec", "mem", "touch", "/tmp/go")
	s.await("mem's usage 40 MiB above its first", 0, func(f map[string]statsRowOf) bool {
		r, ok := f["mem"]
		return ok && r.mem-memBefore >= 40<<20
	})
	// NET I/O: the server sends the 2 MB file to a client container.
	txBefore := first["srv"].tx
	if out := e.ok("run", "--rm", "busybox", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /dev/null http://"+srvIP+"/big && exit 0; sleep 0.3; done; exit 1"); out != "" {
		t.Errorf("wget: %q", out)
	}
	s.await("srv's NET I/O output 2 MB up", 0, func(f map[string]statsRowOf) bool {
		r, ok := f["srv"]
		return ok && r.tx-txBefore >= 2e6 && r.rx > 0
	})
	// BLOCK I/O: blkio's throttle counters, which Docker reads on cgroup
	// v1, count only where a limit is set (kernels since 5.x): a limit
	// far above the disk's speed makes the kernel count without slowing.
	blkioCounts(t, e)
	// A container started meanwhile appears; removed, it goes.
	e.ok("run", "-d", "--name", "late", "busybox", "sleep", "1000")
	n := s.count()
	s.await("late", n, func(f map[string]statsRowOf) bool { _, ok := f["late"]; return ok })
	e.ok("rm", "-f", "late")
	n = s.count()
	s.await("late gone", n, func(f map[string]statsRowOf) bool {
		_, ok := f["late"]
		_, idle := f["idle"]
		return !ok && idle
	})
	if code := s.interrupt(); code != 130 {
		t.Errorf("stats after SIGINT: exit %d, stderr %q", code, s.errOut())
	}
	if msg := s.errOut(); msg != "" {
		t.Errorf("stats stderr: %q", msg)
	}
	if strings.Contains(s.raw.String(), "\033[") {
		t.Errorf("escape sequences written to a pipe")
	}
}

// TestStatsNamed: named containers, --no-stream, --format, --no-trunc,
// and the errors.
func TestStatsNamed(t *testing.T) {
	e := withStatsBusybox(t)
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "aa", "busybox", "sleep", "1000"))
	e.ok("run", "-d", "--name", "bb", "busybox", "sh", "-c", "sleep 1000 & sleep 1000")
	e.ok("run", "-d", "--name", "ss", "busybox", "true")
	waitFor(t, "ss to exit", func() bool { return e.ok("inspect", "-f", "{{.State.Status}}", "ss") == "exited\n" })

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "{{.Name}} {{.PIDs}}", "aa", "bb"}, "aa 1\nbb 2\n"},
		{[]string{"--format", "{{.Container}} {{.ID}}", "aa"}, "aa " + id[:12] + "\n"},
		{[]string{"--format", "{{.ID}}", "--no-trunc", id[:5]}, id + "\n"},
		{[]string{"--format", "{{.Container}}", id[:5]}, id[:5] + "\n"},
		// A stopped container shows zeros.
		{[]string{"--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.NetIO}} {{.BlockIO}} {{.PIDs}}", "ss"},
			"ss 0.00% 0B / 0B 0.00% 0B / 0B 0B / 0B 0\n"},
		{[]string{"--format", "table {{.Name}}\t{{.PIDs}}", "aa"}, "NAME      PIDS\naa        1\n"},
	} {
		if got := e.ok(append([]string{"stats", "--no-stream"}, tt.args...)...); got != tt.want {
			t.Errorf("stats --no-stream %q = %q, want %q", tt.args, got, tt.want)
		}
	}
	// The default table: Docker's columns.
	out := e.ok("stats", "--no-stream", "aa")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stats --no-stream a:\n%s", out)
	}
	header := regexp.MustCompile(`^CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS$`)
	row := regexp.MustCompile(`^` + id[:12] + ` +aa +\d+\.\d\d% +[\d.]+[KMG]?i?B / [\d.]+[KMGT]iB +\d+\.\d\d% +[\d.]+[kMG]?B / [\d.]+[kMG]?B +[\d.]+[kMG]?B / [\d.]+[kMG]?B +1$`)
	if !header.MatchString(lines[0]) || !row.MatchString(lines[1]) {
		t.Errorf("stats --no-stream a:\n%s", out)
	}
	// -a with --no-stream and no names: every container, stopped ones too.
	all := e.ok("stats", "--no-stream", "-a", "--format", "{{.Name}}")
	for _, n := range []string{"aa", "bb", "ss"} {
		if !strings.Contains(all, n+"\n") {
			t.Errorf("stats --no-stream -a lacks %s: %q", n, all)
		}
	}
	if running := e.ok("stats", "--no-stream", "--format", "{{.Name}}"); strings.Contains(running, "ss\n") {
		t.Errorf("stats --no-stream shows the stopped container: %q", running)
	}

	// Errors: one line, and nothing on stdout.
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"stats", "--no-stream", "nope"}, 1, "No such container: nope"},
		{[]string{"stats", "aa", "nope"}, 1, "No such container: nope"},
		{[]string{"stats", "--no-stream", "--format", "{{.Nope", "aa"}, 1, "template parsing error"},
		{[]string{"stats", "--no-stream", "--format", "{{.Nope}}", "aa"}, 1, "can't evaluate field Nope"},
		{[]string{"stats", "--bogus"}, 125, "unknown flag: --bogus"},
	} {
		out, errOut, code := e.fusebox(tt.args...)
		if code != tt.code || !strings.HasPrefix(errOut, "fusebox: ") || !strings.Contains(errOut, tt.msg) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.args, code, out, errOut, tt.code, tt.msg)
		}
	}

	// Streaming named containers: a stopped one shows zeros, and stays; a
	// removed one shows dashes, as docker's stats.
	st := e.startStats("aa", "bb")
	st.await("aa and bb running", 0, func(f map[string]statsRowOf) bool { return f["aa"].pids == 1 && f["bb"].pids == 2 })
	e.ok("stop", "-t", "1", "bb")
	n := st.count()
	st.await("bb stopped", n, func(f map[string]statsRowOf) bool {
		b, ok := f["bb"]
		return ok && !b.invalid && b.pids == 0 && b.cpu == 0 && b.mem == 0 && f["aa"].pids == 1
	})
	// Removed, it shows dashes: the daemon ends its stream.
	e.ok("rm", "bb")
	n = st.count()
	st.await("bb removed", n, func(f map[string]statsRowOf) bool { return f["bb"].invalid && f["aa"].pids == 1 })
	if code := st.interrupt(); code != 130 {
		t.Errorf("stats a b after SIGINT: exit %d, stderr %q", code, st.errOut())
	}
}

// TestStatsTerminal: on a terminal each redraw clears the screen first.
func TestStatsTerminal(t *testing.T) {
	e := withStatsBusybox(t)
	e.ok("run", "-d", "--name", "aa", "busybox", "sleep", "1000")
	cmd := e.fuseboxCmd("stats", "--format", "table {{.Name}} {{.PIDs}}")
	s := startPTY(t, cmd, nil)
	waitFor(t, "two redraws", func() bool { return strings.Count(s.output(), clearScreen+"NAME PIDS\r\naa 1\r\n") >= 2 })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("stats on a terminal after SIGINT: %v (want exit status 130); output %q", err, s.drained())
	}
}

// TestDockerCLIStats: the docker CLI shows the daemon's stats with its
// columns and no error, and the same figures fusebox shows.
func TestDockerCLIStats(t *testing.T) {
	requireDocker(t)
	e := withStatsBusybox(t)
	e.ok("run", "-d", "--name", "aa", "busybox", "sh", "-c", "sleep 1000 & sleep 1000")
	e.ok("run", "-d", "--name", "srv", "busybox", "sh", "-c", "dd if=/dev/zero of=/tmp/big bs=1k count=2048 2>/dev/null && httpd -f -p 80 -h /tmp")
	srvIP := strings.TrimSpace(e.ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv"))
	e.ok("run", "--rm", "busybox", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /dev/null http://"+srvIP+"/big && exit 0; sleep 0.3; done; exit 1")

	out, errOut, code := e.docker("stats", "--no-stream")
	if code != 0 || errOut != "" {
		t.Fatalf("docker stats --no-stream: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	header := regexp.MustCompile(`^CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS$`)
	if len(lines) != 3 || !header.MatchString(lines[0]) || strings.Contains(out, "--") {
		t.Errorf("docker stats --no-stream:\n%s", out)
	}
	// The figures that don't move between two runs are the same.
	format := "{{.Container}} {{.Name}} {{.PIDs}} {{.BlockIO}}"
	docker := e.dockerOK("stats", "--no-stream", "--format", format, "aa", "srv")
	fusebox := e.ok("stats", "--no-stream", "--format", format, "aa", "srv")
	if docker != fusebox {
		t.Errorf("docker stats:\n%sfusebox stats:\n%s", docker, fusebox)
	}
	// srv sent 2 MB and the docker CLI sees it.
	if net := e.dockerOK("stats", "--no-stream", "--format", "{{.NetIO}}", "srv"); !regexp.MustCompile(`^[\d.]+kB / [\d.]+MB\n$`).MatchString(net) {
		t.Errorf("docker stats NET I/O of srv: %q", net)
	}
	// Bad input exits as docker's does.
	for _, args := range [][]string{
		{"stats", "--no-stream", "nope"},
		{"stats", "--no-stream", "--format", "{{.Nope", "aa"},
	} {
		_, dErr, dCode := e.docker(args...)
		_, fErr, fCode := e.fusebox(args...)
		if dCode != fCode {
			t.Errorf("%v: fusebox exit %d (%q), docker %d (%q)", args, fCode, fErr, dCode, dErr)
		}
	}
}

// blkioCounts runs a container that writes then reads 8 MiB with O_DIRECT
// on a volume (the disk of the daemon's root), and checks its BLOCK I/O.
func blkioCounts(t *testing.T, e *env) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(e.root, &st); err != nil {
		t.Fatal(err)
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	if major == 0 {
		t.Logf("BLOCK I/O not checked: %s is on no block device", e.root)
		return
	}
	id := strings.TrimSpace(e.ok("run", "-d", "-v", "/data", "--name", "blk", "busybox", "sh", "-c",
		"while [ ! -e /tmp/go ]; do sleep 0.1; done; dd if=/dev/zero of=/data/f bs=1M count=8 oflag=direct && dd if=/data/f of=/dev/null bs=1M iflag=direct && touch /tmp/done; sleep 1000"))
	cg := filepath.Join("/sys/fs/cgroup/blkio/fusebox", id)
	if _, err := os.Stat(cg); err != nil {
		t.Logf("BLOCK I/O not checked: no cgroup v1 blkio for the container: %v", err)
		return
	}
	limit := fmt.Sprintf("%d:%d %d", major, minor, int64(1)<<40)
	for _, f := range []string{"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"} {
		if err := os.WriteFile(filepath.Join(cg, f), []byte(limit), 0o644); err != nil {
			t.Fatalf("set %s: %v", f, err)
		}
	}
	e.ok("exec", "blk", "touch", "/tmp/go")
	waitFor(t, "the O_DIRECT copy", func() bool {
		_, _, code := e.fusebox("exec", "blk", "test", "-e", "/tmp/done")
		return code == 0
	})
	// 8 MiB each way, and a little more: the file system reads its
	// metadata and writes its journal for the container too.
	got := e.ok("stats", "--no-stream", "--format", "{{.BlockIO}}", "blk")
	r, w, ok := strings.Cut(strings.TrimSpace(got), " / ")
	read, err1 := units.FromHumanSize(r)
	written, err2 := units.FromHumanSize(w)
	if !ok || err1 != nil || err2 != nil || read < 8<<20 || written < 8<<20 || read > 12<<20 || written > 12<<20 {
		t.Errorf("BLOCK I/O after 8 MiB read and written: %q", got)
	}
	e.ok("rm", "-f", "blk")
}
