package launcher

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fusebox/fusebox/internal/testenv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// denyMkdir is a profile in Docker's format that allows every syscall but
// mkdir (mkdir and mkdirat, its two entry points on amd64).
const denyMkdir = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`

func TestBuildSpecSeccomp(t *testing.T) {
	base := Options{ID: "c1", Rootfs: "/r", StateDir: "/s", Args: []string{"true"}}
	with := func(f func(*Options)) Options { o := base; f(&o); return o }
	cases := []struct {
		name    string
		opts    Options
		confine bool   // a filter is set
		action  string // its default action
		unshare bool   // unshare is allowed unconditionally by some rule
	}{
		{"default", base, true, "SCMP_ACT_ERRNO", false},
		{"builtin", with(func(o *Options) { o.Seccomp = SeccompBuiltin }), true, "SCMP_ACT_ERRNO", false},
		{"unconfined", with(func(o *Options) { o.Seccomp = SeccompUnconfined }), false, "", false},
		{"privileged", with(func(o *Options) { o.Privileged = true }), false, "", false},
		{"privileged wins over a profile", with(func(o *Options) { o.Privileged = true; o.Seccomp = denyMkdir }), false, "", false},
		{"file", with(func(o *Options) { o.Seccomp = denyMkdir }), true, "SCMP_ACT_ALLOW", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := BuildSpec(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			sc := s.Linux.Seccomp
			if (sc != nil) != c.confine {
				t.Fatalf("seccomp %v, want confined %v", sc != nil, c.confine)
			}
			if sc == nil {
				return
			}
			if string(sc.DefaultAction) != c.action {
				t.Fatalf("default action %s, want %s", sc.DefaultAction, c.action)
			}
			if hasSyscall(sc, "unshare") != c.unshare {
				t.Fatalf("unshare allowed: %v", !c.unshare)
			}
		})
	}
	// Without CAP_SYS_ADMIN the default profile doesn't allow mount; the
	// profile follows the capabilities it is built for.
	s, err := BuildSpec(base)
	if err != nil {
		t.Fatal(err)
	}
	if hasSyscall(s.Linux.Seccomp, "mount") || !hasSyscall(s.Linux.Seccomp, "read") {
		t.Fatalf("default profile: mount %v, read %v", hasSyscall(s.Linux.Seccomp, "mount"), hasSyscall(s.Linux.Seccomp, "read"))
	}
}

func hasSyscall(sc *specs.LinuxSeccomp, name string) bool {
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 {
			for _, n := range r.Names {
				if n == name {
					return true
				}
			}
		}
	}
	return false
}

func TestBuildSpecSeccompRejects(t *testing.T) {
	cases := map[string]string{
		"not json":         `{"defaultAction":`,
		"unknown action":   `{"defaultAction":"SCMP_ACT_MAYBE"}`,
		"name and names":   `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}`,
		"unknown operator": `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_SOMETIMES"}]}]}`,
	}
	for name, profile := range cases {
		t.Run(name, func(t *testing.T) {
			err := CheckSeccompProfile(profile)
			if !errors.Is(err, ErrSeccompProfile) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("CheckSeccompProfile: %v", err)
			}
		})
	}
	_, err := BuildSpec(Options{ID: "c1", Rootfs: "/r", StateDir: "/s", Args: []string{"true"}, Seccomp: "nonsense"})
	if !errors.Is(err, ErrInvalidOptions) || !errors.Is(err, ErrSeccompProfile) {
		t.Fatalf("BuildSpec with a bad profile: %v", err)
	}
	for _, ok := range []string{SeccompDefault, SeccompBuiltin, SeccompUnconfined, denyMkdir} {
		if err := CheckSeccompProfile(ok); err != nil {
			t.Fatalf("CheckSeccompProfile(%.20q): %v", ok, err)
		}
	}
}

// shimHasSeccomp reports whether fuseboxBin was built with seccomp support
// (main_test.go adds the tag when libseccomp-dev is installed).
func shimHasSeccomp() bool { return SeccompSupported() || testenv.SeccompTags() != nil }

func needSeccomp(t *testing.T) {
	t.Helper()
	needRoot(t)
	if !shimHasSeccomp() {
		t.Skip("the test shim has no seccomp support: install libseccomp-dev (scripts/install-deps) or set GOFLAGS=-tags=seccomp")
	}
}

// probe prints the container's seccomp mode and whether it may create a
// user namespace (which the kernel allows without any capability, and
// Docker's profile refuses without CAP_SYS_ADMIN) and make a directory.
const probe = `grep '^Seccomp:' /proc/self/status; ` +
	`unshare -U true 2>/dev/null && echo unshare=ok || echo unshare=refused; ` +
	`mkdir /tmp/d 2>/dev/null && echo mkdir=ok || echo mkdir=refused; ` +
	`touch /tmp/f && echo touch=ok`

func TestSeccompInContainer(t *testing.T) {
	needSeccomp(t)
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"default", Options{}, "Seccomp:\t2\nunshare=refused\nmkdir=ok\ntouch=ok\n"},
		{"unconfined", Options{Seccomp: SeccompUnconfined}, "Seccomp:\t0\nunshare=ok\nmkdir=ok\ntouch=ok\n"},
		{"privileged", Options{Privileged: true}, "Seccomp:\t0\nunshare=ok\nmkdir=ok\ntouch=ok\n"},
		{"profile", Options{Seccomp: denyMkdir}, "Seccomp:\t2\nunshare=ok\nmkdir=refused\ntouch=ok\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Args = []string{"sh", "-c", probe}
			r := runContainer(t, container{opts: c.opts})
			if r.stdout != c.want || r.exit.ExitCode != 0 {
				t.Fatalf("got %q (stderr %q, exit %d), want %q", r.stdout, r.stderr, r.exit.ExitCode, c.want)
			}
		})
	}
}

// TestSeccompExec checks that an exec'd process is under the container's
// filter, as in Docker. Where the profile is compiled once (filter.go),
// libcontainer was given none: only the program the shim hands each
// process can confine it.
func TestSeccompExec(t *testing.T) {
	needSeccomp(t)
	compiled := canPrecompile(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, cfg, err := startContainer(t, ctx, container{opts: Options{Args: []string{"sleep", "100"}}})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, ConfigFile)); err != nil || bytes.Contains(b, []byte(`"filter":`)) != compiled {
		t.Fatalf("compiled once: %v, but the shim config says otherwise (%v)", compiled, err)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	for _, priv := range []bool{false, true} {
		var out bytes.Buffer
		e, err := s.Exec(ctx, ExecConfig{Args: []string{"sh", "-c", probe}, Privileged: priv}, Stdio{Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		if st, err := e.Wait(ctx); err != nil || st.ExitCode != 0 {
			t.Fatalf("exec: %+v %v", st, err)
		}
		if !strings.HasPrefix(out.String(), "Seccomp:\t2\nunshare=refused\n") {
			t.Fatalf("exec (privileged %v): %q", priv, out.String())
		}
	}
	if _, err := s.Stop(ctx, 15, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

var noSeccompShim = struct {
	once sync.Once
	path string
	err  error
}{}

// TestSeccompUnsupportedShim runs a container with Docker's profile under
// a shim built without seccomp support: the container runs unconfined and
// the shim log says why, as Docker on a host without seccomp; it never
// fails to start.
func TestSeccompUnsupportedShim(t *testing.T) {
	needRoot(t)
	noSeccompShim.once.Do(func() {
		dir, err := os.MkdirTemp("", "fusebox-noseccomp-")
		if err != nil {
			noSeccompShim.err = err
			return
		}
		noSeccompShim.path = filepath.Join(dir, "fusebox-shim")
		// -tags= on the command line overrides a GOFLAGS -tags=seccomp.
		cmd := exec.Command("go", "build", "-tags=", "-o", noSeccompShim.path, "./cmd/fusebox-shim")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			noSeccompShim.err = errors.New(string(out))
		}
	})
	if noSeccompShim.err != nil {
		t.Fatalf("build a shim without seccomp: %v", noSeccompShim.err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(noSeccompShim.path)) })

	o := Options{ID: testID(t), Rootfs: busyboxRootfs(t), StateDir: filepath.Join(t.TempDir(), "state"), Args: []string{"sh", "-c", probe}}
	spec, err := BuildSpec(o)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Linux.Seccomp == nil {
		t.Fatal("BuildSpec set no seccomp profile")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Config{ID: o.ID, StateDir: o.StateDir, Spec: spec, Exe: noSeccompShim.path})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	r := attachRun(t, ctx, s, nil)
	if err := AwaitGone(ctx, o.StateDir); err != nil {
		t.Fatal(err)
	}
	if r.stdout != "Seccomp:\t0\nunshare=ok\nmkdir=ok\ntouch=ok\n" || r.exit.ExitCode != 0 {
		t.Fatalf("got %q (stderr %q, exit %d)", r.stdout, r.stderr, r.exit.ExitCode)
	}
	log, err := os.ReadFile(filepath.Join(o.StateDir, ShimLog))
	if err != nil || !strings.Contains(string(log), "built without seccomp support") {
		t.Fatalf("shim log %q, %v", log, err)
	}
}
