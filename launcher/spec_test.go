package launcher

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func validOptions() Options {
	return Options{ID: "abc", Rootfs: "/rootfs", StateDir: "/state", Args: []string{"true"}}
}

func TestBuildSpecRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Options)
		want   string
	}{
		{"no id", func(o *Options) { o.ID = "" }, "empty container id"},
		{"relative rootfs", func(o *Options) { o.Rootfs = "rootfs" }, `rootfs "rootfs" is not an absolute path`},
		{"relative state", func(o *Options) { o.StateDir = "state" }, `state dir "state" is not an absolute path`},
		{"no command", func(o *Options) { o.Args = nil }, "no command specified"},
		{"empty command", func(o *Options) { o.Args = []string{""} }, "no command specified"},
		{"relative cwd", func(o *Options) { o.Cwd = "tmp" }, "needs to be an absolute path"},
		{"tiny memory", func(o *Options) { o.Memory = 1024 }, "minimum memory limit allowed is 6MB"},
		{"bad cpuset", func(o *Options) { o.CpusetCpus = "0-x" }, "invalid value 0-x for cpuset cpus"},
		{"relative netns", func(o *Options) { o.NetNS = "ns1" }, `network namespace "ns1" is not a path`},
		{"missing init", func(o *Options) { o.Init = true; o.InitPath = "/no/such/init" }, "--init needs /no/such/init"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := validOptions()
			tc.modify(&o)
			_, err := BuildSpec(o)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func hasNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == typ {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

func TestBuildSpecDefaults(t *testing.T) {
	o := validOptions()
	o.ID = "0123456789abcdef"
	s, err := BuildSpec(o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Hostname != "0123456789ab" {
		t.Errorf("hostname %q", s.Hostname)
	}
	if s.Linux.CgroupsPath != "/fusebox/0123456789abcdef" {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	if want := []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/"}; !slices.Equal(s.Process.Env, want) {
		t.Errorf("env %q", s.Process.Env)
	}
	if s.Process.Cwd != "/" || !slices.Equal(s.Process.Capabilities.Bounding, defaultCapabilities) {
		t.Errorf("cwd %q caps %v", s.Process.Cwd, s.Process.Capabilities.Bounding)
	}
	if len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
		t.Error("no masked or read-only paths")
	}
	if _, ok := hasNamespace(s, specs.NetworkNamespace); !ok {
		t.Error("no network namespace by default")
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
		if m.Type == "bind" && filepath.Dir(m.Source) != "/state" {
			t.Errorf("bind mount from %s", m.Source)
		}
	}
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"} {
		if !slices.Contains(dests, d) {
			t.Errorf("no mount at %s", d)
		}
	}
	nofile := s.Process.Rlimits[0]
	if nofile.Type != "RLIMIT_NOFILE" || nofile.Hard > dockerNofile || nofile.Hard == 0 {
		t.Errorf("nofile %+v", nofile)
	}

	o.Privileged, o.Tty, o.Env = true, true, []string{"PATH=/bin", "HOME=/root"}
	o.NetNS = "/run/netns/x"
	s, err = BuildSpec(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.MaskedPaths) != 0 || len(s.Process.Capabilities.Bounding) <= len(defaultCapabilities) {
		t.Errorf("privileged: masked %v caps %v", s.Linux.MaskedPaths, s.Process.Capabilities.Bounding)
	}
	if want := []string{"HOSTNAME=0123456789ab", "TERM=xterm", "PATH=/bin", "HOME=/root"}; !slices.Equal(s.Process.Env, want) {
		t.Errorf("env %q", s.Process.Env)
	}
	if ns, _ := hasNamespace(s, specs.NetworkNamespace); ns.Path != "/run/netns/x" {
		t.Errorf("netns %+v", ns)
	}
	o.NetNS = NetNSHost
	if s, _ = BuildSpec(o); s != nil {
		if _, ok := hasNamespace(s, specs.NetworkNamespace); ok {
			t.Error("host network has a namespace")
		}
	}
}

func TestResolveUser(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
	write("etc/group", "root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
	for _, tc := range []struct {
		spec string
		want User
		err  string
	}{
		{"", User{0, 0, []uint32{0}, "/root"}, ""},
		{"app", User{1000, 1000, []uint32{1000, 2000}, "/home/app"}, ""},
		{"1000", User{1000, 1000, []uint32{1000, 2000}, "/home/app"}, ""},
		{"1000:2000", User{1000, 2000, []uint32{2000}, "/home/app"}, ""},
		{"app:extra", User{1000, 2000, []uint32{2000}, "/home/app"}, ""},
		{"4242", User{4242, 0, []uint32{0}, "/"}, ""},
		{"4242:4343", User{4242, 4343, []uint32{4343}, "/"}, ""},
		{"nosuch", User{}, "unable to find user nosuch"},
		{"app:nosuch", User{}, "unable to find user app:nosuch"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			u, err := ResolveUser(root, tc.spec)
			if tc.err != "" {
				if !errors.Is(err, ErrUnknownUser) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || u.UID != tc.want.UID || u.GID != tc.want.GID || !slices.Equal(u.AdditionalGids, tc.want.AdditionalGids) || u.Home != tc.want.Home {
				t.Fatalf("got %+v, %v; want %+v", u, err, tc.want)
			}
		})
	}
	// The files are read inside the rootfs even through an absolute symlink.
	if err := os.Remove(filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd.real", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	write("etc/passwd.real", "someone:x:77:77::/x:/bin/sh\n")
	if u, err := ResolveUser(root, "someone"); err != nil || u.UID != 77 {
		t.Fatalf("through a symlink: %+v, %v", u, err)
	}
	if _, err := ResolveUser(root, "root"); err == nil {
		t.Fatal("read the host's passwd through a symlink")
	}
}
