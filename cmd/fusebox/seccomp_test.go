package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fusebox/fusebox/internal/testenv"
)

// seccompShim skips unless the binaries these tests built can load seccomp
// filters (main_test.go builds them with the tag when libseccomp-dev is
// there, as `make build` does).
func seccompShim(t *testing.T) {
	t.Helper()
	if !strings.Contains(os.Getenv("GOFLAGS"), "seccomp") && testenv.SeccompTags() == nil {
		t.Skip("built without seccomp support: install libseccomp-dev (scripts/install-deps)")
	}
}

// TestSeccompRun checks, from inside containers, that `run` applies
// Docker's default profile (filter mode, and a user namespace refused,
// which the kernel would allow without any capability), none with
// --privileged or seccomp=unconfined, and a profile file's rules; that
// info says so; and that a bad profile or option fails with 125 and leaves
// no container.
func TestSeccompRun(t *testing.T) {
	seccompShim(t)
	e := withBusybox(t)
	probe := `grep '^Seccomp:' /proc/self/status; unshare -U true 2>/dev/null && echo unshare=ok || echo unshare=refused; ` +
		`mkdir /tmp/d 2>/dev/null && echo mkdir=ok || echo mkdir=refused`
	dir := t.TempDir()
	denyMkdir := filepath.Join(dir, "deny-mkdir.json")
	if err := os.WriteFile(denyMkdir, []byte(`{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, "Seccomp:\t2\nunshare=refused\nmkdir=ok\n"},
		{"builtin", []string{"--security-opt", "seccomp=builtin"}, "Seccomp:\t2\nunshare=refused\nmkdir=ok\n"},
		{"privileged", []string{"--privileged"}, "Seccomp:\t0\nunshare=ok\nmkdir=ok\n"},
		{"unconfined", []string{"--security-opt", "seccomp=unconfined"}, "Seccomp:\t0\nunshare=ok\nmkdir=ok\n"},
		{"profile file", []string{"--security-opt", "seccomp=" + denyMkdir}, "Seccomp:\t2\nunshare=ok\nmkdir=refused\n"},
		{"old separator", []string{"--security-opt", "seccomp:unconfined"}, "Seccomp:\t0\nunshare=ok\nmkdir=ok\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, c.args...), "busybox", "sh", "-c", probe)
			if out := e.ok(args...); out != c.want {
				t.Errorf("got %q, want %q", out, c.want)
			}
		})
	}
	// exec joins the container's filter.
	e.ok("run", "-d", "--name", "confined", "busybox", "sleep", "100")
	if out := e.ok("exec", "confined", "sh", "-c", probe); !strings.HasPrefix(out, "Seccomp:\t2\nunshare=refused\n") {
		t.Errorf("exec: %q", out)
	}
	if out := e.ok("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "confined"); out != "null\n" {
		t.Errorf("inspect SecurityOpt: %q", out)
	}
	e.ok("rm", "-f", "confined")

	if out := e.ok("info", "--format", "{{json .SecurityOptions}}"); out != `["name=seccomp,profile=builtin"]`+"\n" {
		t.Errorf("info SecurityOptions: %q", out)
	}
	if out := e.ok("info"); !strings.Contains(out, " Security Options:\n  seccomp\n   Profile: builtin\n") {
		t.Errorf("info lacks the seccomp profile:\n%s", out)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",`), 0o644); err != nil {
		t.Fatal(err)
	}
	badAction := filepath.Join(dir, "bad-action.json")
	if err := os.WriteFile(badAction, []byte(`{"defaultAction": "SCMP_ACT_PERHAPS"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	before := e.ok("ps", "-aq")
	for _, c := range []struct{ msg, opt string }{
		{"compacting json for seccomp profile (" + bad + ") failed", "seccomp=" + bad},
		{"opening seccomp profile (" + filepath.Join(dir, "none.json") + ") failed", "seccomp=" + filepath.Join(dir, "none.json")},
		{"invalid seccomp profile", "seccomp=" + badAction},
		{`invalid --security-opt: "nonsense"`, "nonsense"},
		{`invalid --security-opt 2: "apparmor=unconfined"`, "apparmor=unconfined"},
		{`invalid --security-opt 2: "no-new-privileges=maybe"`, "no-new-privileges=maybe"},
	} {
		_, errOut, code := e.fusebox("run", "--rm", "--security-opt", c.opt, "busybox", "true")
		if code != 125 || !strings.Contains(errOut, c.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("--security-opt %s: exit %d, stderr %q (want 125, one line with %q)", c.opt, code, errOut, c.msg)
		}
	}
	if after := e.ok("ps", "-aq"); after != before {
		t.Errorf("refused runs left containers: %q", after)
	}
	if dirs := e.containerDirs(); len(dirs) != 0 {
		t.Errorf("refused runs left state directories: %v", dirs)
	}
}

// TestSeccompDockerCLI sends what the docker CLI sends: it reads the
// profile file itself and passes its JSON in HostConfig.SecurityOpt.
func TestSeccompDockerCLI(t *testing.T) {
	requireDocker(t)
	seccompShim(t)
	e := withBusybox(t)
	profile := filepath.Join(t.TempDir(), "deny-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	probe := `grep '^Seccomp:' /proc/self/status; mkdir /tmp/d 2>/dev/null && echo mkdir=ok || echo mkdir=refused`
	for _, c := range []struct{ opt, want string }{
		{"", "Seccomp:\t2\nmkdir=ok\n"},
		{"seccomp=unconfined", "Seccomp:\t0\nmkdir=ok\n"},
		{"seccomp=" + profile, "Seccomp:\t2\nmkdir=refused\n"},
	} {
		args := []string{"run", "--rm"}
		if c.opt != "" {
			args = append(args, "--security-opt", c.opt)
		}
		if out := e.dockerOK(append(args, "busybox", "sh", "-c", probe)...); out != c.want {
			t.Errorf("docker run --security-opt %q: %q, want %q", c.opt, out, c.want)
		}
	}
	if out := e.dockerOK("info", "--format", "{{json .SecurityOptions}}"); out != `["name=seccomp,profile=builtin"]`+"\n" {
		t.Errorf("docker info SecurityOptions: %q", out)
	}
	if _, errOut, code := e.docker("run", "--rm", "--security-opt", "label=disable", "busybox", "true"); code != 125 || !strings.Contains(errOut, `invalid --security-opt 2: "label=disable"`) {
		t.Errorf("docker run with an unknown security option: exit %d, %q", code, errOut)
	}
}
