package launcher

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fusebox/fusebox/internal/testenv"
)

// fuseboxBin is the engine binary (fuseboxd) the tests run as the shim,
// built once.
var fuseboxBin string

// skipReason is set when the machine can't run containers.
var skipReason string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	switch {
	case os.Geteuid() != 0:
		skipReason = "containers need root"
	case !fileExists("/bin/busybox"):
		skipReason = "the test rootfs needs /bin/busybox (Debian's busybox-static)"
	}
	if skipReason == "" {
		dir, err := os.MkdirTemp("", "fusebox-launcher-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		// The engine binary, whose shim and init verbs are the
		// fallback when no fusebox-shim sits next to the daemon.
		fuseboxBin = filepath.Join(dir, "fuseboxd")
		cmd := exec.Command("go", append(append([]string{"build"}, testenv.SeccompTags()...), "-o", fuseboxBin, "./cmd/fuseboxd")...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build fuseboxd: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

func needRoot(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// busyboxRootfs makes a rootfs as a plain directory: Debian's static
// busybox with its applet links, /etc/passwd and /etc/group with a
// non-root user "app" (1000:1000, also in group "extra" 2000), and a
// non-executable file.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "home/app", "proc", "sys", "dev", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":    "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n",
		"etc/noexec":   "#!/bin/sh\necho never\n",
		"etc/hostname": "image\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"etc/hosts", "etc/resolv.conf"} {
		if err := os.WriteFile(filepath.Join(root, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var idSeq atomic.Int64

// testID is a container id unique in this run.
func testID(t *testing.T) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t%d-%d-%s", os.Getpid(), idSeq.Add(1), name)
}

// container describes a test container.
type container struct {
	opts      Options
	openStdin bool
	rootfs    string
}

// startContainer builds the spec and starts the shim; the caller attaches
// and calls Begin.
func startContainer(t *testing.T, ctx context.Context, c container) (*Shim, Config, error) {
	t.Helper()
	if c.rootfs == "" {
		c.rootfs = busyboxRootfs(t)
	}
	o := c.opts
	o.ID = testID(t)
	o.Rootfs = c.rootfs
	o.StateDir = filepath.Join(t.TempDir(), "state")
	spec, err := BuildSpec(o)
	if err != nil {
		t.Fatalf("BuildSpec: %v", err)
	}
	cfg := Config{ID: o.ID, StateDir: o.StateDir, Spec: spec, OpenStdin: c.openStdin, Exe: fuseboxBin}
	s, err := Start(ctx, cfg)
	if err == nil {
		t.Cleanup(func() {
			// A test that failed half-way must not leave a container.
			kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Signal(kctx, 9)
			_, _ = s.Wait(kctx)
			// The shim answers Wait before it destroys the container;
			// the state directory (a TempDir) is ours once it is gone.
			_ = AwaitGone(kctx, s.StateDir())
		})
	}
	return s, cfg, err
}

// result is what a container did.
type result struct {
	stdout, stderr string
	exit           ExitStatus
}

// runContainer runs a container to its end with stdout and stderr
// attached.
func runContainer(t *testing.T, c container) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, _, err := startContainer(t, ctx, c)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return attachRun(t, ctx, s, nil)
}

func attachRun(t *testing.T, ctx context.Context, s *Shim, stdin *bytes.Buffer) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	stdio := Stdio{Stdout: &stdout, Stderr: &stderr}
	if stdin != nil {
		stdio.Stdin = stdin
		stdio.CloseStdin = true
	}
	a, err := s.Attach(ctx, stdio)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatalf("Begin: %v", err)
	}
	st, err := s.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), exit: st}
}
