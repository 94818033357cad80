package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/daemon"
	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/launcher"
	"github.com/fusebox/fusebox/testdata"
)

// needContainers skips where containers can't run.
func needContainers(t *testing.T) {
	t.Helper()
	testenv.RequireFUSE(t, "containers")
}

// withBusybox is an env whose daemon has the busybox test image as
// busybox:latest.
func withBusybox(t *testing.T) *env {
	t.Helper()
	needContainers(t)
	img := testdata.Busybox(t)
	e := newEnv(t)
	e.ok("load", "-i", img.DockerArchive)
	return e
}

// fail runs the CLI and expects exit code want, with stderr containing msg.
func (e *env) fail(want int, msg string, args ...string) {
	e.t.Helper()
	out, errOut, code := e.fusebox(args...)
	if code != want || !strings.Contains(errOut, msg) {
		e.t.Errorf("fusebox %v: exit %d (want %d), stderr %q (want %q), stdout %q", args, code, want, errOut, msg, out)
	}
}

// containerDirs lists the state directories under the root, once none is
// left of a removed container: the daemon reports a removal before it
// unmounts the rootfs and removes the directory (RemoveContainer), so this
// waits up to 10 s for that before it returns what is there.
func (e *env) containerDirs() []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ids := map[string]bool{}
		for _, id := range strings.Fields(e.ok("ps", "-aq", "--no-trunc")) {
			ids[id] = true
		}
		ents, _ := os.ReadDir(filepath.Join(e.root, "containers"))
		var out []string
		orphans := false
		for _, d := range ents {
			out = append(out, d.Name())
			orphans = orphans || !ids[d.Name()]
		}
		if !orphans || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunFlagsFromInside(t *testing.T) {
	e := withBusybox(t)
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROM_FILE=yes\n\nBOTH=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `echo "host=$(hostname)"; echo "etc=$(cat /etc/hostname)"; echo "env=$FOO,$FROM_FILE,$BOTH"; echo "cwd=$(pwd)"; echo "id=$(id -u):$(id -g)"; ` +
		`echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"; echo "shares=$(cat /sys/fs/cgroup/cpu/cpu.shares)"; ` +
		`echo "cpus=$(cat /sys/fs/cgroup/cpuset/cpuset.cpus)"; echo "pids=$(cat /sys/fs/cgroup/pids/pids.max)"`
	out := e.ok("run", "--rm", "-h", "box1", "-e", "FOO=bar", "--env-file", envFile, "-e", "BOTH=flag", "-w", "/srv/work",
		"-u", testdata.BusyboxUser, "-m", "64m", "-c", "512", "--cpuset-cpus", "0", "--pids-limit", "40",
		"busybox", "sh", "-c", script)
	for _, want := range []string{"host=box1", "etc=box1", "env=bar,yes,flag", "cwd=/srv/work", "id=1000:1000",
		"mem=67108864", "shares=512", "cpus=0", "pids=40"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("run output lacks %q:\n%s", want, out)
		}
	}
	// uid:gid numbers need no passwd entry; the default hostname is the short ID.
	out = e.ok("run", "--name", "numeric", "-u", "4242:4343", "busybox", "sh", "-c", "id -u; id -g; hostname")
	id := strings.TrimSpace(e.ok("inspect", "-f", "{{.Id}}", "numeric"))
	if want := "4242\n4343\n" + id[:12] + "\n"; out != want {
		t.Errorf("numeric user: %q, want %q", out, want)
	}
	// --entrypoint, --read-only, --privileged, labels, stop signal/timeout, cidfile.
	if out := e.ok("run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint"); out != "from entrypoint\n" {
		t.Errorf("--entrypoint: %q", out)
	}
	if _, errOut, code := e.fusebox("run", "--rm", "--read-only", "busybox", "touch", "/x"); code != 1 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("--read-only: exit %d, %q", code, errOut)
	}
	capEff := func(args ...string) string {
		out := e.ok(append(append([]string{"run", "--rm"}, args...), "busybox", "grep", "CapEff", "/proc/self/status")...)
		return strings.TrimSpace(strings.TrimPrefix(out, "CapEff:"))
	}
	if plain, priv := capEff(), capEff("--privileged"); plain == priv || plain != "00000000a80425fb" {
		t.Errorf("capabilities: plain %s, privileged %s", plain, priv)
	}
	cid := filepath.Join(t.TempDir(), "cid")
	e.ok("create", "--name", "meta", "-l", "tier=web", "-l", "empty", "--stop-signal", "SIGUSR1", "--stop-timeout", "3",
		"--cidfile", cid, "--restart", "on-failure:2", "busybox", "true")
	b, err := os.ReadFile(cid)
	if err != nil || len(b) != 64 {
		t.Errorf("cidfile: %q, %v", b, err)
	}
	got := e.ok("inspect", "-f", "{{.Id}} {{.Config.Labels.tier}} {{.Config.StopSignal}} {{.Config.StopTimeout}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.State.Status}} {{.GraphDriver.Name}}", "meta")
	if want := string(b) + " web SIGUSR1 3 on-failure:2 created fusebox\n"; got != want {
		t.Errorf("inspect: %q, want %q", got, want)
	}
}

func TestRunExitCodesAndBadInput(t *testing.T) {
	e := withBusybox(t)
	e.fail(3, "", "run", "--rm", "busybox", "sh", "-c", "exit 3")
	before := e.ok("ps", "-aq")
	e.fail(127, "executable file not found", "run", "--rm", "busybox", "nosuchcommand")
	e.fail(126, "permission denied", "run", "--rm", "busybox", "/etc/passwd")
	e.fail(125, "Unable to find image 'nosuchimage:v1' locally", "run", "--rm", "nosuchimage:v1", "true")
	e.fail(125, `invalid argument "lots" for "-m, --memory" flag`, "run", "--rm", "-m", "lots", "busybox", "true")
	e.fail(125, "Minimum memory limit allowed is 6MB", "run", "--rm", "-m", "1k", "busybox", "true")
	e.fail(125, "Requested CPUs are not available", "run", "--rm", "--cpuset-cpus", "99", "busybox", "true")
	e.fail(125, "invalid restart policy", "run", "--restart", "sometimes", "busybox", "true")
	e.fail(125, "Invalid container name", "run", "--name", "-bad", "busybox", "true")
	e.fail(125, "unable to find user nobodyhere", "run", "--rm", "-u", "nobodyhere", "busybox", "true")
	if after := e.ok("ps", "-aq"); after != before {
		t.Errorf("failed runs left containers:\nbefore %q\nafter  %q", before, after)
	}
	e.ok("create", "--name", "taken", "busybox", "true")
	e.fail(125, `Conflict. The container name "/taken" is already in use`, "run", "--name", "taken", "busybox", "true")
	e.fail(1, "No such container: nope", "stop", "nope")
	e.fail(1, "No such container: nope", "rm", "nope")
	e.fail(1, "is not running", "kill", "taken")
	if n := len(strings.Fields(e.ok("ps", "-aq"))); n != len(strings.Fields(before))+1 {
		t.Errorf("ps -aq has %d containers", n)
	}
	// A failed --rm run leaves no state directory either.
	if dirs := e.containerDirs(); len(dirs) != n(e) {
		t.Errorf("state dirs %v for %d containers", dirs, n(e))
	}
}

func n(e *env) int { return len(strings.Fields(e.ok("ps", "-aq"))) }

func TestDetachedLifecycle(t *testing.T) {
	e := withBusybox(t)
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
		`trap 'echo got-term; exit 7' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done`))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	// logs -f follows: it sees new lines while the container runs.
	follow := e.fuseboxCmd("logs", "-f", "ticker")
	var fout bytes.Buffer
	follow.Stdout = &fout
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ps shows it running", func() bool { return strings.Contains(e.ok("ps"), "ticker") })
	if out := e.ok("ps", "--format", "{{.Names}} {{.Status}}", "-f", "name=tick"); !strings.HasPrefix(out, "ticker Up ") {
		t.Errorf("ps --format: %q", out)
	}
	top := e.ok("top", "ticker")
	if !strings.Contains(top, "PID") || !strings.Contains(top, "sh -c trap") {
		t.Errorf("top:\n%s", top)
	}
	if out := e.ok("exec", "-e", "X=1", "-w", "/tmp", "-u", "user", "ticker", "sh", "-c", "echo $X $(pwd) $(id -u)"); out != "1 /tmp 1000\n" {
		t.Errorf("exec: %q", out)
	}
	e.fail(5, "", "exec", "ticker", "sh", "-c", "exit 5")
	e.fail(127, "executable file not found", "exec", "ticker", "nosuchcommand")

	// pause freezes: the log stops growing until unpause.
	e.ok("pause", "ticker")
	if st := e.ok("inspect", "-f", "{{.State.Status}}", "ticker"); st != "paused\n" {
		t.Errorf("paused status %q", st)
	}
	time.Sleep(300 * time.Millisecond)
	n1 := strings.Count(e.ok("logs", "ticker"), "tick")
	time.Sleep(800 * time.Millisecond)
	if n2 := strings.Count(e.ok("logs", "ticker"), "tick"); n2 != n1 {
		t.Errorf("paused container wrote %d more lines", n2-n1)
	}
	e.ok("unpause", "ticker")
	waitFor(t, "unpaused container to write", func() bool { return strings.Count(e.ok("logs", "ticker"), "tick") > n1 })

	// stop: the stop signal first (the trap exits 7).
	e.ok("stop", "ticker")
	if err := follow.Wait(); err != nil {
		t.Errorf("logs -f: %v", err)
	}
	if !strings.Contains(fout.String(), "tick 3\n") || !strings.HasSuffix(fout.String(), "got-term\n") {
		t.Errorf("logs -f output:\n%s", fout.String())
	}
	if out := e.ok("wait", "ticker"); out != "7\n" {
		t.Errorf("wait: %q", out)
	}
	if out := e.ok("logs", "--tail", "1", "ticker"); out != "got-term\n" {
		t.Errorf("logs --tail 1: %q", out)
	}
	if out := e.ok("logs", "-t", "--tail", "1", "ticker"); !strings.HasSuffix(out, "Z got-term\n") || !strings.HasPrefix(out, "20") {
		t.Errorf("logs -t: %q", out)
	}
	// A container that ignores the stop signal is killed after the timeout.
	e.ok("run", "-d", "--name", "stubborn", "--stop-signal", "USR1", "busybox", "sh", "-c", `trap "" USR1 TERM; while true; do sleep 0.1; done`)
	start := time.Now()
	e.ok("stop", "-t", "1", "stubborn")
	if took := time.Since(start); took < time.Second {
		t.Errorf("stop -t 1 took %s: the signal should have been ignored", took)
	}
	if out := e.ok("inspect", "-f", "{{.State.ExitCode}}", "stubborn"); out != "137\n" {
		t.Errorf("stubborn exit %q, want 137 (SIGKILL)", out)
	}
	// kill -s sends a signal; restart runs it again; rename; rm -f.
	e.ok("start", "stubborn")
	e.ok("kill", "-s", "KILL", "stubborn")
	e.ok("rename", "stubborn", "renamed")
	if out := e.ok("ps", "-a", "--format", "{{.Names}}", "-f", "status=exited"); !strings.Contains(out, "renamed") {
		t.Errorf("ps after rename: %q", out)
	}
	e.ok("restart", "renamed")
	e.fail(1, "container is running: stop the container before removing or force remove", "rm", "renamed")
	e.ok("rm", "-f", "renamed", "ticker")
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("containers left: %q", out)
	}
	if out := e.ok("container", "ls", "-a", "-q"); out != "" {
		t.Errorf("container ls: %q", out)
	}
}

func TestRunRmLeavesNothing(t *testing.T) {
	e := withBusybox(t)
	out := e.ok("run", "--rm", "busybox", "sh", "-c", "echo data > /file; cat /file")
	if out != "data\n" {
		t.Errorf("run: %q", out)
	}
	if ids := e.ok("ps", "-aq"); ids != "" {
		t.Errorf("records left: %q", ids)
	}
	if dirs := e.containerDirs(); len(dirs) != 0 {
		t.Errorf("state dirs left: %v", dirs)
	}
	// The rootfs is unmounted before its directory is removed.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), filepath.Join(e.root, "containers")) {
		t.Errorf("mounts left under the root")
	}
	for _, ctl := range []string{"memory", "pids", "freezer", "cpu"} {
		ents, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", ctl, "fusebox"))
		for _, d := range ents {
			if d.IsDir() && len(d.Name()) == 64 && strings.Contains(strings.Join(e.containerDirs(), " "), d.Name()) {
				t.Errorf("cgroup left: %s/%s", ctl, d.Name())
			}
		}
	}
}

func TestTwentyAtOnce(t *testing.T) {
	e := withBusybox(t)
	var wg sync.WaitGroup
	errs := make([]string, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, code := e.fusebox("run", "--name", fmt.Sprintf("c%d", i), "busybox", "sh", "-c", fmt.Sprintf("echo hello %d; exit %d", i, i%5))
			if code != i%5 || out != fmt.Sprintf("hello %d\n", i) {
				errs[i] = fmt.Sprintf("c%d: exit %d, out %q, err %q", i, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	for _, s := range errs {
		if s != "" {
			t.Error(s)
		}
	}
	if n := len(strings.Fields(e.ok("ps", "-aq", "-f", "status=exited"))); n != 20 {
		t.Errorf("%d exited containers, want 20", n)
	}
}

func TestRunInteractiveUnderPTY(t *testing.T) {
	e := withBusybox(t)
	run := func(name string, cmd *exec.Cmd) {
		t.Run(name, func(t *testing.T) {
			term := startPTY(t, cmd, &pty.Winsize{Rows: 30, Cols: 100})
			waitFor(t, "the shell prompt", func() bool { return term.seen("/ # ") })
			fmt.Fprint(term, "echo calc-$((6*7)); stty size\r")
			waitFor(t, "the command's output", func() bool { return term.seen("calc-42") && term.seen("30 100") })
			_ = pty.Setsize(term.File, &pty.Winsize{Rows: 40, Cols: 132})
			time.Sleep(300 * time.Millisecond)
			fmt.Fprint(term, "stty size\r")
			waitFor(t, "the resized terminal", func() bool { return term.seen("40 132") })
			fmt.Fprint(term, "exit 9\r")
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 9 {
				t.Errorf("exit: %v, output:\n%s", err, term.output())
			}
		})
	}
	run("fusebox", e.fuseboxCmd("run", "-it", "--rm", "busybox", "sh"))
	if _, err := exec.LookPath("docker"); err == nil {
		run("docker", e.dockerCmd("run", "-it", "--rm", "busybox", "sh"))
	}
	if ids := e.ok("ps", "-aq"); ids != "" {
		t.Errorf("--rm left: %q", ids)
	}
}

// TestDetachKeysUnderPTY types ctrl-p ctrl-q into `run -it`: the client
// leaves with status 0 and the container keeps running, for fusebox's CLI
// and for docker's (whose keys the daemon watches).
func TestDetachKeysUnderPTY(t *testing.T) {
	e := withBusybox(t)
	detach := func(name string, cmd *exec.Cmd) {
		t.Run(name, func(t *testing.T) {
			term := startPTY(t, cmd, nil)
			waitFor(t, "the shell prompt", func() bool { return term.seen("/ # ") })
			fmt.Fprint(term, "\x10\x11")
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("detach: %v", err)
				}
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				t.Errorf("the client did not leave on ctrl-p ctrl-q")
			}
			if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Running}}", name)); got != "true" {
				t.Errorf("after detach the container is running=%s, want true", got)
			}
			e.ok("rm", "-f", name)
		})
	}
	detach("det-fusebox", e.fuseboxCmd("run", "-it", "--name", "det-fusebox", "busybox", "sh"))
	if _, err := exec.LookPath("docker"); err == nil {
		detach("det-docker", e.dockerCmd("run", "-it", "--name", "det-docker", "busybox", "sh"))
	}
}

func TestDockerCLIContainers(t *testing.T) {
	requireDocker(t)
	e := withBusybox(t)
	if out := e.dockerOK("run", "--rm", "busybox", "echo", "hi"); out != "hi\n" {
		t.Errorf("docker run: %q", out)
	}
	if _, _, code := e.docker("run", "--rm", "busybox", "sh", "-c", "exit 6"); code != 6 {
		t.Errorf("docker run exit %d, want 6", code)
	}
	if _, errOut, code := e.docker("run", "--rm", "busybox", "nosuchcommand"); code != 127 {
		t.Errorf("docker run of a missing command: exit %d, %s", code, errOut)
	}
	id := strings.TrimSpace(e.dockerOK("run", "-d", "--name", "dk", "busybox", "sh", "-c", `trap 'exit 3' TERM; echo started; while true; do sleep 0.1; done`))
	waitFor(t, "docker logs", func() bool { return strings.Contains(e.dockerOK("logs", "dk"), "started") })
	if out := e.dockerOK("ps", "--format", "{{.ID}} {{.Names}}"); out != id[:12]+" dk\n" {
		t.Errorf("docker ps: %q", out)
	}
	if out := e.dockerOK("exec", "dk", "echo", "in"); out != "in\n" {
		t.Errorf("docker exec: %q", out)
	}
	if out := e.dockerOK("top", "dk"); !strings.Contains(out, "sleep") {
		t.Errorf("docker top: %q", out)
	}
	if out := e.dockerOK("inspect", "-f", "{{.State.Running}} {{.Name}} {{.GraphDriver.Name}}", "dk"); out != "true /dk fusebox\n" {
		t.Errorf("docker inspect: %q", out)
	}
	e.dockerOK("pause", "dk")
	e.dockerOK("unpause", "dk")
	e.dockerOK("stop", "dk")
	if out := e.dockerOK("wait", "dk"); out != "3\n" {
		t.Errorf("docker wait: %q", out)
	}
	e.dockerOK("start", "dk")
	e.dockerOK("kill", "dk")
	if out := e.dockerOK("inspect", "-f", "{{.State.ExitCode}}", "dk"); out != "137\n" {
		t.Errorf("exit after docker kill: %q", out)
	}
	// docker logs -f returns when the container ends.
	e.dockerOK("run", "-d", "--name", "short", "busybox", "sh", "-c", "echo one; sleep 0.5; echo two")
	if out := e.dockerOK("logs", "-f", "short"); out != "one\ntwo\n" {
		t.Errorf("docker logs -f: %q", out)
	}
	e.dockerOK("rm", "dk", "short")
	if out := e.dockerOK("ps", "-aq"); out != "" {
		t.Errorf("docker ps -aq: %q", out)
	}
}

func TestRestartPolicies(t *testing.T) {
	e := withBusybox(t)
	e.ok("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1")
	waitFor(t, "two restarts", func() bool {
		return e.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky") == "2 exited\n"
	})
	if n := strings.Count(e.ok("logs", "flaky"), "run"); n != 3 {
		t.Errorf("flaky ran %d times, want 3", n)
	}
	e.ok("run", "-d", "--name", "forever", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2")
	waitFor(t, "a restart", func() bool {
		c, _ := strconv.Atoi(strings.TrimSpace(e.ok("inspect", "-f", "{{.RestartCount}}", "forever")))
		return c >= 1
	})
	e.ok("stop", "forever")
	time.Sleep(500 * time.Millisecond)
	if st := e.ok("inspect", "-f", "{{.State.Status}}", "forever"); st != "exited\n" {
		t.Errorf("a stopped always container is %s", st)
	}
	// Stopped while it waits out its back-off (a command that fails at once
	// is restarted after 100, 200, 400, 800, 1600 ms…): the restart is
	// dropped. "restarting" also covers the restart's own start, so the
	// stop lands in the back-off most of the time, not always.
	e.ok("run", "-d", "--name", "crashing", "--restart", "always", "busybox", "false")
	waitFor(t, "four restarts, then the back-off", func() bool {
		var c int
		var st string
		fmt.Sscan(e.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "crashing"), &c, &st)
		return c >= 4 && st == "restarting"
	})
	e.ok("stop", "crashing")
	before := e.ok("inspect", "-f", "{{.RestartCount}}", "crashing")
	time.Sleep(2 * time.Second)
	if st := e.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "crashing"); st != strings.TrimSpace(before)+" exited\n" {
		t.Errorf("after stop during the back-off: %q, want %q exited", st, strings.TrimSpace(before))
	}
}

func TestDaemonKilledLosesNoFile(t *testing.T) {
	e := withBusybox(t)
	e.ok("run", "-d", "--name", "writer", "busybox", "sh", "-c", "echo precious > /data.txt; mkdir -p /srv/new; echo more > /srv/new/f; sync; while true; do sleep 1; done")
	waitFor(t, "the file", func() bool {
		out, _, code := e.fusebox("exec", "writer", "cat", "/srv/new/f")
		return code == 0 && out == "more\n"
	})
	pid := e.daemonPID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
	// The next command starts a new daemon, which cleans up.
	if st := e.ok("inspect", "-f", "{{.State.Status}} {{.State.Running}}", "writer"); st != "exited false\n" {
		t.Errorf("after the daemon died: %q", st)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), filepath.Join(e.root, "containers")) {
		t.Errorf("stale mount left after restart:\n%s", mi)
	}
	e.ok("start", "writer")
	if out := e.ok("exec", "writer", "cat", "/data.txt", "/srv/new/f"); out != "precious\nmore\n" {
		t.Errorf("files after restart: %q", out)
	}
	e.ok("rm", "-f", "writer")
}

// TestDaemonKilledDuringStart: a start records "running" only once the
// command was let go, so a daemon killed during a start leaves a shim and
// a mount under a record that still says created. The next daemon cleans
// them up as it does for a running container: no mount left, the
// container exited, and a start runs it again on its files.
func TestDaemonKilledDuringStart(t *testing.T) {
	e := withBusybox(t)
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "midstart", "busybox", "sh", "-c", "echo kept > /kept.txt; while true; do sleep 1; done"))
	waitFor(t, "the file", func() bool {
		out, _, code := e.fusebox("exec", "midstart", "cat", "/kept.txt")
		return code == 0 && out == "kept\n"
	})
	pid := e.daemonPID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
	// What the record says in the middle of a start.
	ctx := context.Background()
	st, err := cas.Open(ctx, filepath.Join(e.root, daemon.StoreDir))
	if err != nil {
		t.Fatal(err)
	}
	b := st.Bucket("containers")
	raw, err := b.Get(ctx, id)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		st.Close()
		t.Fatal(err)
	}
	rec["state"].(map[string]any)["status"] = "created"
	raw, _ = json.Marshal(rec)
	err = b.Put(ctx, id, raw)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	if got := e.ok("inspect", "-f", "{{.State.Status}} {{.State.Running}}", "midstart"); got != "exited false\n" {
		t.Errorf("after the daemon died during a start: %q", got)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), filepath.Join(e.root, "containers", id)) {
		t.Errorf("stale mount left after restart:\n%s", mi)
	}
	e.ok("start", "midstart")
	if out := e.ok("exec", "midstart", "cat", "/kept.txt"); out != "kept\n" {
		t.Errorf("file after restart: %q", out)
	}
	e.ok("rm", "-f", "midstart")
}

func TestEventsAndPrune(t *testing.T) {
	e := withBusybox(t)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	e.ok("run", "--name", "ev", "busybox", "true")
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	out := e.ok("events", "--since", since, "--until", until, "-f", "container=ev", "--format", "{{.Action}}")
	if out != "create\nattach\nstart\ndie\n" {
		t.Errorf("events: %q", out)
	}
	e.ok("tag", "busybox", "other:v2")
	e.ok("rmi", "other:v2")
	out = e.ok("events", "--since", since, "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10), "-f", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	if !strings.HasSuffix(out, "tag other:v2\nuntag other:v2\n") {
		t.Errorf("image events: %q", out)
	}
	e.ok("create", "--name", "idle", "busybox", "true")
	out = e.ok("container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:") || strings.Count(out, "\n") < 4 {
		t.Errorf("prune: %q", out)
	}
	if ids := e.ok("ps", "-aq"); ids != "" {
		t.Errorf("left after prune: %q", ids)
	}
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShimIsTheSmallBinary: with fusebox-shim installed next to fusebox,
// the daemon runs it as each container's shim, and libcontainer re-executes
// that same binary as the container's init (the point of the small binary:
// a start pays for its start-up, not the whole CLI's).
func TestShimIsTheSmallBinary(t *testing.T) {
	e := withBusybox(t)
	id := strings.TrimSpace(e.ok("run", "-d", "busybox", "sleep", "60"))
	t.Cleanup(func() { e.fusebox("rm", "-f", id) })
	pid, err := os.ReadFile(filepath.Join(e.root, "containers", id, launcher.PidFile))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Readlink("/proc/" + strings.TrimSpace(string(pid)) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(fuseboxBin), launcher.ShimBinary); exe != want {
		t.Errorf("the shim runs %s, want %s", exe, want)
	}
	if out := e.ok("run", "--rm", "busybox", "echo", "ran"); out != "ran\n" {
		t.Errorf("a container started by fusebox-shim printed %q", out)
	}
}

// TestRmForceMany: `rm -f` of running containers always succeeds. Stop
// with SIGKILL and no grace used to send a second SIGKILL at once, and one
// that found the process dead but its exit not yet recorded failed with
// "unable to signal init: os: process already finished" (1 round in 6 of
// ten containers here).
func TestRmForceMany(t *testing.T) {
	e := withBusybox(t)
	for r := range 4 {
		var names []string
		for k := range 8 {
			n := fmt.Sprintf("many%d-%d", r, k)
			e.ok("run", "-d", "--name", n, "busybox", "sleep", "600")
			names = append(names, n)
		}
		e.ok(append([]string{"rm", "-f"}, names...)...)
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("left: %q", out)
	}
}
