package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fusebox/fusebox/internal/testenv"

	"golang.org/x/sys/unix"
)

// fuseboxBin is the binary built for these tests; they run it as a user
// would, on a temp root and socket, never on /var/lib/fusebox.
var fuseboxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fusebox-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// fuseboxd and fusebox-shim next to it, as `make build` installs
	// them: `fusebox daemon` runs fuseboxd, whose daemon runs fusebox-shim
	// as every container's shim (launcher.DefaultExe). The launcher's own
	// tests cover the fallback, `fuseboxd shim`.
	fuseboxBin = filepath.Join(dir, "fusebox")
	out, err := exec.Command("go", append(append([]string{"build"}, testenv.SeccompTags()...), "-o", dir+"/", ".", "../fuseboxd", "../fusebox-shim")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fusebox: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one daemon's root and socket.
type env struct {
	t    *testing.T
	root string
	host string
	sock string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	sock := filepath.Join(root, "fusebox.sock")
	e := &env{t: t, root: root, host: "unix://" + sock, sock: sock}
	t.Cleanup(e.stopDaemon)
	return e
}

// fusebox runs the CLI; it returns stdout, stderr and the exit status.
func (e *env) fusebox(args ...string) (string, string, int) {
	e.t.Helper()
	return e.fuseboxIn(nil, args...)
}

func (e *env) fuseboxIn(stdin []byte, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := e.fuseboxCmd(args...)
	cmd.Env = append(cmd.Env, "FUSEBOX_ROOT=/nonexistent-should-be-overridden", "FUSEBOX_HOST=unix:///nonexistent.sock")
	return e.runCmd(cmd, stdin)
}

// fuseboxCmd is the CLI on this env's root and socket, not yet started.
func (e *env) fuseboxCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(fuseboxBin, append([]string{"--root", e.root, "-H", e.host}, args...)...)
	cmd.Env = os.Environ()
	return cmd
}

// dockerCmd is the real docker CLI pointed at this env's daemon, not yet
// started.
func (e *env) dockerCmd(args ...string) *exec.Cmd {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host, "DOCKER_CONFIG="+filepath.Join(e.root, "docker-config"))
	return cmd
}

// runCmd runs cmd with stdin (none when nil) and returns its stdout,
// stderr and exit status; a command that can't be started fails the test.
func (e *env) runCmd(cmd *exec.Cmd, stdin []byte) (string, string, int) {
	e.t.Helper()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs the CLI and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.fusebox(args...)
	if code != 0 {
		e.t.Fatalf("fusebox %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// docker runs the real docker CLI against this daemon.
func (e *env) docker(args ...string) (string, string, int) {
	e.t.Helper()
	return e.dockerIn(nil, args...)
}

func (e *env) dockerIn(stdin []byte, args ...string) (string, string, int) {
	e.t.Helper()
	return e.runCmd(e.dockerCmd(args...), stdin)
}

func (e *env) dockerOK(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.docker(args...)
	if code != 0 {
		e.t.Fatalf("docker %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

func (e *env) daemonPID() int {
	b, err := os.ReadFile(filepath.Join(e.root, "daemon.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// stopDaemon stops the daemon this env started (by its pid file) and
// waits for its socket to go away.
func (e *env) stopDaemon() {
	pid := e.daemonPID()
	if pid == 0 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	// A shutdown finishes the network teardowns still running after the
	// last exits (network.Manager.Close): seconds on a loaded machine.
	for i := 0; i < 800; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Errorf("daemon %d did not stop on SIGTERM", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

func requireDocker(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
}

func TestAutostartAndVersion(t *testing.T) {
	e := newEnv(t)
	out := e.ok("version")
	for _, want := range []string{"Client:", "Server: fusebox", "API version:      1.44 (minimum version 1.24)"} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	pid := e.daemonPID()
	if pid == 0 {
		t.Fatal("no daemon pid file after autostart")
	}
	if _, err := os.Stat(filepath.Join(e.root, "daemon.log")); err != nil {
		t.Errorf("daemon log: %v", err)
	}
	// The next command reuses the running daemon.
	if out := e.ok("version", "--format", "{{.Server.APIVersion}}"); strings.TrimSpace(out) != "1.44" {
		t.Errorf("version --format: %q", out)
	}
	if e.daemonPID() != pid {
		t.Errorf("a second daemon was started")
	}
	// The started daemon runs in a session of its own.
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Errorf("daemon sid %d, want %d (setsid)", sid, pid)
	}
	e.stopDaemon()
	if _, err := os.Stat(e.sock); !os.IsNotExist(err) {
		t.Errorf("socket left after SIGTERM: %v", err)
	}
}

func TestInfo(t *testing.T) {
	e := newEnv(t)
	out := e.ok("info")
	for _, want := range []string{"Storage Driver: fusebox", "Docker Root Dir: " + e.root, "Cgroup Driver: cgroupfs", "Images: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
	if out := e.ok("info", "--format", "{{.Driver}} {{json .NCPU}}"); !strings.HasPrefix(out, "fusebox ") {
		t.Errorf("info --format: %q", out)
	}
}

func TestForegroundDaemon(t *testing.T) {
	e := newEnv(t)
	cmd := e.fuseboxCmd("daemon")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; e.daemonPID() == 0; i++ {
		if i > 400 {
			t.Fatalf("daemon did not start:\n%s", stderr.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	// A second daemon on the same root is refused with a clear error.
	other := exec.Command(fuseboxBin, "--root", e.root, "-H", "unix://"+filepath.Join(t.TempDir(), "x.sock"), "daemon")
	out, err := other.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "root is in use by another fusebox daemon") {
		t.Errorf("second daemon: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(e.sock); !os.IsNotExist(err) {
		t.Errorf("socket left after SIGINT")
	}
	if !strings.Contains(stderr.String(), "daemon listening") {
		t.Errorf("foreground daemon logs nothing to stderr: %q", stderr.String())
	}
}

func TestAutostartFailurePointsAtLog(t *testing.T) {
	e := newEnv(t)
	// Hold the root's lock so the started daemon exits at once.
	f, err := os.OpenFile(filepath.Join(e.root, "daemon.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := e.fusebox("version")
	if code != 1 || !strings.Contains(errOut, filepath.Join(e.root, "daemon.log")) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("exit %d, stderr %q: want exit 1 and one line naming the log", code, errOut)
	}
}

func TestBadFlags(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"version", "--nope"}, 125},
		{[]string{"ps", "--bogus"}, 125},
		{[]string{"images", "-Z"}, 125},
		{[]string{"info", "extra"}, 1},
		{[]string{"-H", "tcp://127.0.0.1:1", "version"}, 1},
		{[]string{"version", "--format", "{{.Nope"}, 1},
	} {
		_, errOut, code := e.fusebox(tt.args...)
		if code != tt.code || !strings.HasPrefix(errOut, "fusebox: ") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d", tt.args, code, errOut, tt.code)
		}
	}
	if e.daemonPID() != 0 {
		t.Errorf("a bad command started the daemon")
	}
}

func TestDockerCLISystem(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	e.ok("version") // starts the daemon
	out := e.dockerOK("version")
	for _, want := range []string{"Server: fusebox", "API version:      1.44 (minimum version 1.24)"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker version lacks %q:\n%s", want, out)
		}
	}
	out = e.dockerOK("info")
	for _, want := range []string{"Storage Driver: fusebox", "Docker Root Dir: " + e.root, "Cgroup Driver: cgroupfs"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker info lacks %q:\n%s", want, out)
		}
	}
	if out := e.dockerOK("info", "--format", "{{.Driver}}"); strings.TrimSpace(out) != "fusebox" {
		t.Errorf("docker info --format: %q", out)
	}
}

// Several commands at once on a fresh root start one daemon between them,
// and all succeed.
func TestConcurrentAutostart(t *testing.T) {
	e := newEnv(t)
	const n = 4
	errs := make(chan string, n)
	for range n {
		go func() {
			cmd := e.fuseboxCmd("info", "--format", "{{.Driver}}")
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "fusebox" {
				errs <- fmt.Sprintf("%v: %s", err, out)
				return
			}
			errs <- ""
		}()
	}
	for range n {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
}
