package launcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/devices"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrInvalidOptions is wrapped by every error BuildSpec returns for options
// it can't turn into a spec.
var ErrInvalidOptions = errors.New("invalid container options")

// The files a container sees at /etc/hostname, /etc/hosts and
// /etc/resolv.conf are bind-mounted from these names in its state
// directory, as Docker does from its container directory.
const (
	HostnameFile   = "hostname"
	HostsFile      = "hosts"
	ResolvConfFile = "resolv.conf"
)

// Network namespace modes for Options.NetNS besides a path to join.
const (
	// NetNSNew gives the container a namespace of its own with only a
	// loopback interface; it is the default.
	NetNSNew = ""
	// NetNSHost shares the host's network namespace (`--net host`).
	NetNSHost = "host"
)

// Options are what the options of `docker run` mean for the runtime, after
// the daemon has merged the image config into them. Options that only the
// daemon acts on (names, labels, restart policies, the stop signal and
// timeout) are not here.
type Options struct {
	// ID names the container; its cgroups are /fusebox/<ID>.
	ID string
	// Rootfs is the mounted root filesystem, an absolute path.
	Rootfs string
	// StateDir is the container's state directory; the hostname, hosts and
	// resolv.conf files bind-mounted into the container live there.
	StateDir string

	Args []string // the command, entrypoint included; required
	Env  []string // KEY=value; PATH, HOSTNAME, HOME and TERM get Docker's defaults
	Cwd  string   // absolute; "/" when empty
	// User is the resolved user the command runs as.
	User User
	// Hostname defaults to the first 12 characters of ID.
	Hostname string
	Tty      bool
	// ConsoleWidth and ConsoleHeight are the initial size of the tty.
	ConsoleWidth, ConsoleHeight uint16

	Memory     int64  // bytes, 0 = unlimited (`-m`)
	CPUShares  uint64 // 0 = default (`-c`)
	CpusetCpus string // `--cpuset-cpus`, such as "0" or "0-1"
	PidsLimit  int64  // 0 = unlimited, as Docker; -1 also unlimited
	Privileged bool
	ReadOnly   bool // read-only rootfs (`--read-only`)

	// Seccomp is the container's seccomp filter (`--security-opt
	// seccomp=`): SeccompDefault or SeccompBuiltin for Docker's default
	// profile, SeccompUnconfined for none, or a profile in Docker's JSON
	// format. A privileged container has none, as in Docker.
	Seccomp string
	// NoNewPrivileges keeps the container's processes from gaining
	// privileges through setuid binaries or file capabilities
	// (`--security-opt no-new-privileges`).
	NoNewPrivileges bool

	// NetNS is NetNSNew, NetNSHost, or the path of a network namespace to
	// join (such as /var/run/netns/<name>, prepared by the network code).
	NetNS string

	// Init runs the command under a small init as PID 1 that forwards
	// signals and reaps zombies (`--init`): InitPath, a static binary on
	// the host (default DefaultInitPath), is bind-mounted read-only at
	// /sbin/docker-init and run as `docker-init -- ARGS...`, as Docker
	// does with its tini.
	Init     bool
	InitPath string

	// Mounts are the container's own mounts (binds, volumes, tmpfs),
	// mounted after Docker's default ones, in order, so a parent comes
	// first; one on the destination of a default mount replaces it.
	Mounts []specs.Mount
}

// DefaultInitPath is the init `--init` uses: Debian's tini-static (package
// tini), the same program as Docker's docker-init.
const DefaultInitPath = "/usr/bin/tini-static"

// initTarget is where the init binary appears in the container.
const initTarget = "/sbin/docker-init"

// User is a user and its groups, as numbers inside the container.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32
	// Home is the user's home directory from /etc/passwd, "/" if unknown.
	Home string
}

// DefaultPath is the PATH a container gets when neither the image nor the
// user sets one (Docker's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCapabilities are the capabilities Docker grants an unprivileged
// container.
var defaultCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// maskedPaths and readonlyPaths hide or freeze the parts of /proc and /sys
// that leak host information or allow changes to the host, as Docker does
// for unprivileged containers.
var (
	maskedPaths = []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

// dockerNofile is the RLIMIT_NOFILE Docker containers get (inherited from
// dockerd's unit). A process may not raise its hard limit, so BuildSpec caps
// it at the caller's hard limit; asking for more makes the container fail to
// start, as podman and runc do on such hosts.
const dockerNofile = 1048576

// BuildSpec returns the OCI runtime spec Docker would give a container with
// these options: its default capabilities, masked and read-only paths and
// device rules and Docker's default seccomp profile (or Options.Seccomp)
// unless privileged, /proc /sys /dev /dev/pts /dev/shm
// /dev/mqueue mounted as Docker mounts them, /etc/hostname /etc/hosts and
// /etc/resolv.conf bind-mounted from the state directory, and cgroups under
// /fusebox/<id>. It does not write the bind-mounted files; [Start] does.
func BuildSpec(o Options) (*specs.Spec, error) {
	if o.ID == "" {
		return nil, fmt.Errorf("%w: empty container id", ErrInvalidOptions)
	}
	if !filepath.IsAbs(o.Rootfs) {
		return nil, fmt.Errorf("%w: rootfs %q is not an absolute path", ErrInvalidOptions, o.Rootfs)
	}
	if !filepath.IsAbs(o.StateDir) {
		return nil, fmt.Errorf("%w: state dir %q is not an absolute path", ErrInvalidOptions, o.StateDir)
	}
	if len(o.Args) == 0 || o.Args[0] == "" {
		return nil, fmt.Errorf("%w: no command specified", ErrInvalidOptions)
	}
	cwd := o.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("%w: the working directory %q is invalid, it needs to be an absolute path", ErrInvalidOptions, cwd)
	}
	if o.Memory < 0 || (o.Memory > 0 && o.Memory < 6*1024*1024) {
		return nil, fmt.Errorf("%w: minimum memory limit allowed is 6MB", ErrInvalidOptions)
	}
	if o.CpusetCpus != "" && !validCpuset(o.CpusetCpus) {
		return nil, fmt.Errorf("%w: invalid value %s for cpuset cpus", ErrInvalidOptions, o.CpusetCpus)
	}
	hostname := o.Hostname
	if hostname == "" {
		hostname = o.ID
		if len(hostname) > 12 {
			hostname = hostname[:12]
		}
	}
	home := o.User.Home
	if home == "" {
		home = "/"
	}
	env := defaultEnv(o.Env, hostname, home, o.Tty)

	caps := defaultCapabilities
	if o.Privileged {
		caps = allCapabilities()
	}
	nofile, err := nofileLimit()
	if err != nil {
		return nil, err
	}

	args := append([]string(nil), o.Args...)
	mounts := dockerMounts(o)
	if o.Init {
		initPath := o.InitPath
		if initPath == "" {
			initPath = DefaultInitPath
		}
		if _, err := os.Stat(initPath); err != nil {
			return nil, fmt.Errorf("%w: --init needs %s: %w", ErrInvalidOptions, initPath, err)
		}
		args = append([]string{initTarget, "--"}, args...)
		mounts = append(mounts, specs.Mount{Destination: initTarget, Type: "bind", Source: initPath, Options: []string{"bind", "ro"}})
	}
	mounts, err = withUserMounts(mounts, o.Mounts)
	if err != nil {
		return nil, err
	}

	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: o.Rootfs, Readonly: o.ReadOnly},
		Hostname: hostname,
		Process: &specs.Process{
			Terminal: o.Tty,
			Args:     args,
			Env:      env,
			Cwd:      cwd,
			User: specs.User{
				UID:            o.User.UID,
				GID:            o.User.GID,
				AdditionalGids: append([]uint32(nil), o.User.AdditionalGids...),
			},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  append([]string(nil), caps...),
				Effective: append([]string(nil), caps...),
				Permitted: append([]string(nil), caps...),
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}},
			NoNewPrivileges: o.NoNewPrivileges,
		},
		Mounts: mounts,
		Linux: &specs.Linux{
			CgroupsPath: CgroupPath(o.ID),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.MountNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.PIDNamespace},
			},
			Resources: resources(o),
		},
	}
	if o.Tty && o.ConsoleWidth > 0 && o.ConsoleHeight > 0 {
		s.Process.ConsoleSize = &specs.Box{Width: uint(o.ConsoleWidth), Height: uint(o.ConsoleHeight)}
	}
	switch o.NetNS {
	case NetNSNew:
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	case NetNSHost:
	default:
		if !filepath.IsAbs(o.NetNS) {
			return nil, fmt.Errorf("%w: network namespace %q is not a path", ErrInvalidOptions, o.NetNS)
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: o.NetNS})
	}
	if o.Privileged {
		if s.Linux.Devices, err = hostDevices(); err != nil {
			return nil, err
		}
	} else {
		s.Linux.MaskedPaths = append([]string(nil), maskedPaths...)
		s.Linux.ReadonlyPaths = append([]string(nil), readonlyPaths...)
	}
	if s.Linux.Seccomp, err = seccompProfile(s, o); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return s, nil
}

// hostDevices lists the host's device nodes, which a privileged container
// gets as Docker gives them (its /dev/pts, /dev/shm and /dev/mqueue stay
// its own).
func hostDevices() ([]specs.LinuxDevice, error) {
	devs, err := devices.HostDevices()
	if err != nil {
		return nil, fmt.Errorf("list host devices: %w", err)
	}
	var out []specs.LinuxDevice
	for _, d := range devs {
		mode := d.FileMode
		uid, gid := d.Uid, d.Gid
		out = append(out, specs.LinuxDevice{
			Path:     d.Path,
			Type:     string(rune(d.Type)),
			Major:    d.Major,
			Minor:    d.Minor,
			FileMode: &mode,
			UID:      &uid,
			GID:      &gid,
		})
	}
	return out, nil
}

// CgroupPath is the cgroup every controller puts the container in: one
// fusebox parent, never the caller's cgroup (on cgroup v1,
// /sys/fs/cgroup/<controller>/fusebox/<id>).
func CgroupPath(id string) string { return "/fusebox/" + id }

// defaultEnv adds Docker's defaults to env: PATH, HOSTNAME, HOME, and TERM
// for a tty. Values the caller gave win.
func defaultEnv(env []string, hostname, home string, tty bool) []string {
	has := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		has[k] = true
	}
	var out []string
	if !has["PATH"] {
		out = append(out, "PATH="+DefaultPath)
	}
	out = append(out, "HOSTNAME="+hostname)
	if tty && !has["TERM"] {
		out = append(out, "TERM=xterm")
	}
	out = append(out, env...)
	if !has["HOME"] {
		out = append(out, "HOME="+home)
	}
	return out
}

func dockerMounts(o Options) []specs.Mount {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if o.Privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
		cgOpts = []string{"nosuid", "noexec", "nodev", "relatime", "rw"}
	}
	bind := func(name, dst string) specs.Mount {
		return specs.Mount{
			Destination: dst,
			Type:        "bind",
			Source:      filepath.Join(o.StateDir, name),
			Options:     []string{"rbind", "rprivate"},
		}
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
		bind(ResolvConfFile, "/etc/resolv.conf"),
		bind(HostnameFile, "/etc/hostname"),
		bind(HostsFile, "/etc/hosts"),
	}
}

func resources(o Options) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	if o.Privileged {
		r.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		// Deny everything; libcontainer then allows its default devices
		// (null, zero, full, tty, random, urandom, ptmx, pts), as Docker's.
		r.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	}
	if o.Memory > 0 {
		limit := o.Memory
		r.Memory = &specs.LinuxMemory{Limit: &limit}
		// Docker lets a container swap as much as its memory limit
		// (memory+swap = twice the limit) when the kernel accounts swap.
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
			swap := 2 * o.Memory
			r.Memory.Swap = &swap
		}
	}
	if o.CPUShares > 0 || o.CpusetCpus != "" {
		r.CPU = &specs.LinuxCPU{Cpus: o.CpusetCpus}
		if o.CPUShares > 0 {
			shares := o.CPUShares
			r.CPU.Shares = &shares
		}
	}
	if o.PidsLimit > 0 {
		limit := o.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return r
}

// validCpuset reports whether s is a cpuset list such as "0", "0-1" or
// "0,2-3".
func validCpuset(s string) bool {
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !digits(lo) || (isRange && !digits(hi)) {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// nofileLimit is Docker's RLIMIT_NOFILE capped at this process's hard limit.
func nofileLimit() (uint64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("get nofile limit: %w", err)
	}
	return min(uint64(dockerNofile), rl.Max), nil
}

// allCapabilities lists the capabilities `--privileged` grants: every one
// in this process's bounding set. Docker grants every capability the
// kernel knows, but a capability outside the caller's bounding set can't be
// granted, and asking for it makes the container fail to start (here the
// machine's own bounding set lacks CAP_SYS_RESOURCE).
func allCapabilities() []string {
	bnd, ok := boundingSet()
	var out []string
	for i, name := range capNames {
		if !ok || bnd&(1<<uint(i)) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// boundingSet reads CapBnd from /proc/self/status.
func boundingSet() (uint64, bool) {
	v, err := statusField("/proc/self/status", "CapBnd")
	if err != nil {
		return 0, false
	}
	var n uint64
	if _, err := fmt.Sscanf(v, "%x", &n); err != nil {
		return 0, false
	}
	return n, true
}

// errNoStatusField says a /proc status file has no such field.
var errNoStatusField = errors.New("no such field")

// statusField returns the value of field name in the /proc status file
// path ("Name:\tvalue"), without the surrounding space.
func statusField(path, name string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s: %s: %w", path, name, errNoStatusField)
}

// capNames are the capabilities in kernel numbering order.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// withUserMounts appends the container's own mounts to the default ones,
// dropping a default mount that a user mount replaces (a volume on
// /dev/shm, a bind of /etc/hosts), as Docker does.
func withUserMounts(defaults, user []specs.Mount) ([]specs.Mount, error) {
	if len(user) == 0 {
		return defaults, nil
	}
	replaced := map[string]bool{}
	for _, m := range user {
		if !filepath.IsAbs(m.Destination) {
			return nil, fmt.Errorf("%w: mount destination %q is not an absolute path", ErrInvalidOptions, m.Destination)
		}
		if m.Type == "bind" && !filepath.IsAbs(m.Source) {
			return nil, fmt.Errorf("%w: bind source %q is not an absolute path", ErrInvalidOptions, m.Source)
		}
		replaced[filepath.Clean(m.Destination)] = true
	}
	out := make([]specs.Mount, 0, len(defaults)+len(user))
	for _, m := range defaults {
		if !replaced[m.Destination] {
			out = append(out, m)
		}
	}
	return append(out, user...), nil
}
