package bench

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOwnDaemon starts the harness's daemon, checks that the fusebox
// commands it runs reach that daemon (its root, not the machine's), reads
// its memory, and checks that Stop leaves no process and no socket.
func TestOwnDaemon(t *testing.T) {
	requireRoot(t)
	exe := builtProgram("fusebox")
	if exe == "" {
		t.Skip("no fusebox binary: run `make build` first")
	}
	dir := t.TempDir()
	srv := &Server{Exe: exe, Dir: dir}
	cli := Fusebox{Path: exe, Server: srv}
	out, err := cli.Run(t.Context(), "info")
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	d, err := srv.Daemon(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := "Docker Root Dir: " + filepath.Join(dir, "root"); !strings.Contains(out, want) {
		t.Errorf("info did not reach the bench daemon: no %q in\n%s", want, out)
	}
	m, err := readProcMemory(d.PID())
	if err != nil || m.RSS <= 0 {
		t.Errorf("daemon memory: %+v, %v", m, err)
	}
	if kids, err := childPIDs(os.Getpid()); err != nil || !contains(kids, d.PID()) {
		t.Errorf("childPIDs(test) = %v, %v: lacks the daemon %d", kids, err, d.PID())
	}
	sock := strings.TrimPrefix(d.Host, "unix://")
	if err := srv.Stop(context.Background()); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := syscall.Kill(d.PID(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("daemon %d still there after Stop: %v", d.PID(), err)
	}
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		t.Errorf("something still answers on %s", sock)
	}
	// Stopped means stopped: no command starts it again.
	if _, err := cli.Run(t.Context(), "info"); err == nil {
		t.Errorf("a command after Stop reached a daemon")
	}
}

func TestStartDaemonFails(t *testing.T) {
	requireRoot(t)
	// /bin/false exits at once: the error says the daemon exited.
	_, err := StartDaemon(t.Context(), "/bin/false", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "exited at start") {
		t.Errorf("StartDaemon(/bin/false) = %v, want an exit error", err)
	}
	if _, err := StartDaemon(t.Context(), "", t.TempDir()); !errors.Is(err, ErrMissing) {
		t.Errorf("StartDaemon without executable = %v, want ErrMissing", err)
	}
}

func TestKBField(t *testing.T) {
	tests := []struct {
		text, name string
		want       int64
		err        error
	}{
		{"Name:\tx\nVmRSS:\t  2048 kB\n", "VmRSS:", 2048 << 10, nil},
		{"Rss:  10 kB\nPss:   7 kB\n", "Pss:", 7 << 10, nil},
		{"VmRSS:\t1 kB\n", "Pss:", 0, errNoField},
	}
	for _, tc := range tests {
		got, err := kbField(tc.text, tc.name)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("kbField(%q, %q) = %d, %v; want %d, %v", tc.text, tc.name, got, err, tc.want, tc.err)
		}
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestReplacedBinary checks that a daemon whose binary was rebuilt under
// it is told apart: its container starts are not comparable. The daemon
// runs fuseboxd, which `fusebox daemon` hands over to.
func TestReplacedBinary(t *testing.T) {
	requireRoot(t)
	exe, engine := builtProgram("fusebox"), builtProgram("fuseboxd")
	if exe == "" || engine == "" {
		t.Skip("no fusebox and fuseboxd binaries: run `make build` first")
	}
	dir := t.TempDir()
	copyTo := func(src string) string {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(src))
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	cp, engineCopy := copyTo(exe), copyTo(engine)
	srv := &Server{Exe: cp, Dir: filepath.Join(dir, "d")}
	defer srv.Stop(context.Background())
	cli := Fusebox{Path: cp, Server: srv}
	if err := replacedBinary(t.Context(), cli); err != nil {
		t.Fatalf("fresh binary: %v", err)
	}
	// What `go build -o` does: a new file renamed over the old one.
	data, err := os.ReadFile(engineCopy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(engineCopy+".new", data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(engineCopy+".new", engineCopy); err != nil {
		t.Fatal(err)
	}
	if err := replacedBinary(t.Context(), cli); !errors.Is(err, errReplaced) {
		t.Errorf("replaced binary: %v, want errReplaced", err)
	}
}
