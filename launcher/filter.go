package launcher

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// A seccomp profile compiled once, instead of in every container's init.
//
// libcontainer turns a profile into a BPF program in the container's init,
// with libseccomp, just before it loads it: for Docker's default profile
// (404 rules over three architectures) that is about 30 ms of every
// container start here, the same work every time. fusebox has it done once
// per profile and hands the init the program:
//
//  1. Compile: a child (the shim's binary, as filterArg) has libcontainer
//     load the profile into itself, exactly as a container's init would;
//     the daemon reads the loaded program back from the kernel
//     (PTRACE_SECCOMP_GET_FILTER) and keeps it (precompiledFilter). The
//     program is what libcontainer and libseccomp make of the profile, not
//     a second implementation of them. (Two of libcontainer's own compiles
//     may differ in the order of the architectures its ENOSYS prologue
//     tests, which it takes from a map; the tests compare verdicts.)
//  2. Hand over: the shim gives libcontainer the container without its
//     profile, and passes the program to the init on the socket libcontainer
//     hands the init for its pidfd (handFilter). The init reads it before
//     libcontainer starts (receiveFilter).
//  3. Load: libcontainer loads a profile right after its parent lets the
//     init run on (procRun), while the init still has CAP_SYS_ADMIN and
//     before it drops capabilities. The init loads the program at that same
//     point, on the same thread: libcontainer announces it in a debug log
//     line, which the init hooks (filterHook).
//  4. Check: the shim checks that the process is in seccomp filter mode
//     before the command runs (checkFiltered) and fails the start otherwise,
//     so that a libcontainer that stopped announcing procRun could never
//     run a container unconfined.
//
// Only profiles libcontainer loads as a plain filter qualify: no
// notification listener, known flags, and no no_new_privileges (with it,
// libcontainer loads the profile later, after dropping capabilities).
// Anything else, or a compile that fails, takes libcontainer's own path.

// filterArg is the argument with which the daemon runs the shim's binary
// to compile a profile.
const filterArg = "seccomp-filter"

// filterMagic starts the program the shim hands an init.
const filterMagic = "fusebox-seccomp-v1\x00"

// procRunRead is libcontainer's debug log line for an init that has read
// its parent's go-ahead, right before it would load its seccomp profile.
const procRunRead = "read sync type:procRun"

// errNotPrecompilable says a profile takes libcontainer's own path.
var errNotPrecompilable = errors.New("profile is not precompilable")

// compiledFilter is a seccomp profile as the kernel takes it: a BPF program
// (struct sock_filter, 8 bytes an instruction) and the flags of the
// seccomp(2) call that loads it.
type compiledFilter struct {
	Flags   uint   `json:"flags"`
	Program []byte `json:"program"`
}

// precompileFilters turns the compile-once path on; tests turn it off to
// compare with libcontainer's own.
var precompileFilters = true

// filterFlags are the seccomp(2) flags libcontainer loads cfg with, or
// errNotPrecompilable.
func filterFlags(cfg *configs.Seccomp) (uint, error) {
	if cfg.ListenerPath != "" {
		return 0, errNotPrecompilable
	}
	for _, c := range cfg.Syscalls {
		if c.Action == configs.Notify {
			return 0, errNotPrecompilable
		}
	}
	var flags uint
	for _, f := range cfg.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			flags |= 1 << 5 // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		case "SECCOMP_FILTER_FLAG_TSYNC": // no constant in runtime-spec
			// libcontainer ignores it: only the init's thread execs.
		default:
			return 0, errNotPrecompilable
		}
	}
	return flags, nil
}

var filters = struct {
	sync.Mutex
	byKey map[[sha256.Size]byte]filterResult
}{byKey: map[[sha256.Size]byte]filterResult{}}

type filterResult struct {
	f   *compiledFilter
	err error
}

// precompiledFilter returns the compiled form of spec's seccomp profile,
// compiling it with exe the first time; nil when the spec has no profile
// or takes libcontainer's own path. A failed compile is remembered too, so
// that a shim that can't compile costs one try, not one per start.
func precompiledFilter(ctx context.Context, exe string, spec *specs.Spec) (*compiledFilter, error) {
	if !precompileFilters || spec.Linux == nil || spec.Linux.Seccomp == nil || spec.Process == nil || spec.Process.NoNewPrivileges {
		return nil, nil
	}
	if exe == selfExe && !initWired {
		// A binary that doesn't call ContainerInit (a test binary) would
		// run its own main for filterArg.
		return nil, errNotPrecompilable
	}
	var key [sha256.Size]byte
	if p, _ := defaultProfile(); spec.Linux.Seccomp == p {
		// Most containers share it: no need to encode it for each.
		key = sha256.Sum256([]byte(exe + "\x00default"))
	} else {
		profile, err := json.Marshal(spec.Linux.Seccomp)
		if err != nil {
			return nil, err
		}
		key = sha256.Sum256(append([]byte(exe+"\x00"), profile...))
	}
	filters.Lock()
	defer filters.Unlock()
	if r, ok := filters.byKey[key]; ok {
		return r.f, r.err
	}
	f, err := compileFilter(ctx, exe, spec.Linux.Seccomp)
	if err != nil && ctx.Err() != nil {
		return nil, err // the caller gave up; the next one tries again
	}
	filters.byKey[key] = filterResult{f, err}
	return f, err
}

// PrepareSeccomp compiles Docker's default profile for the shim binary
// exe ("" for DefaultExe) ahead of the first container that runs under it,
// which would otherwise wait for the compile (tens of ms). A compile that
// fails leaves every start to libcontainer's own compile.
func PrepareSeccomp(ctx context.Context, exe string) {
	if exe == "" {
		exe = DefaultExe()
	}
	_, _ = defaultFilter(ctx, exe)
}

// defaultFilter is Docker's default profile compiled for exe.
func defaultFilter(ctx context.Context, exe string) (*compiledFilter, error) {
	p, err := defaultProfile()
	if err != nil {
		return nil, err
	}
	return precompiledFilter(ctx, exe, &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Seccomp: p}})
}

// compileFilter has a child running exe load profile through libcontainer
// and reads the program back from the kernel.
func compileFilter(ctx context.Context, exe string, profile *specs.LinuxSeccomp) (*compiledFilter, error) {
	cfg, err := specconv.SetupSeccomp(profile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSeccompProfile, err)
	}
	flags, err := filterFlags(cfg)
	if err != nil {
		return nil, err
	}
	in, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, filterArg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("compile seccomp profile: %w", err)
	}
	// Closing its stdin ends the child; Wait also collects its stderr.
	waited := false
	wait := func() {
		if !waited {
			waited = true
			_ = stdin.Close()
			_ = cmd.Wait()
		}
	}
	defer wait()
	if _, err := stdin.Write(in); err != nil {
		return nil, fmt.Errorf("compile seccomp profile: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "loaded\n" {
		wait()
		return nil, fmt.Errorf("compile seccomp profile: %s", strings.TrimSpace(stderr.String()))
	}
	prog, err := loadedFilter(cmd.Process.Pid)
	if err != nil {
		return nil, fmt.Errorf("compile seccomp profile: %w", err)
	}
	return &compiledFilter{Flags: flags, Program: prog}, nil
}

// loadedFilter returns the seccomp program the thread pid runs under (the
// newest one, when there are several), reading it through ptrace: the
// thread is stopped for the read and let go after it.
func loadedFilter(pid int) ([]byte, error) {
	// ptrace requests must come from the thread that attached.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		return nil, fmt.Errorf("ptrace %d: %w", pid, err)
	}
	if err := unix.PtraceInterrupt(pid); err != nil {
		return nil, fmt.Errorf("ptrace %d: %w", pid, err)
	}
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("wait for %d: %w", pid, err)
		}
		if ws.Exited() || ws.Signaled() {
			return nil, fmt.Errorf("%d exited", pid)
		}
		if ws.Stopped() {
			break
		}
	}
	defer unix.PtraceDetach(pid)
	n, err := getFilter(pid, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]unix.SockFilter, n)
	if _, err := getFilter(pid, buf); err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)*int(unsafe.Sizeof(buf[0]))), nil
}

// getFilter is PTRACE_SECCOMP_GET_FILTER of pid's newest filter into buf,
// or its length with a nil buf.
func getFilter(pid int, buf []unix.SockFilter) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), 0,
		uintptr(unsafe.Pointer(unsafe.SliceData(buf))), 0, 0)
	if errno != 0 {
		return 0, fmt.Errorf("read the seccomp filter of %d: %w", pid, errno)
	}
	return int(n), nil
}

// compileFilterChild is the child of compileFilter: it loads the profile
// on stdin through libcontainer, says so, and waits for stdin to close. It
// runs in an init function, on the main thread, whose filter the parent
// reads.
func compileFilterChild() int {
	var cfg configs.Seccomp
	if err := json.NewDecoder(os.Stdin).Decode(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "decode profile:", err)
		return 1
	}
	if _, err := seccomp.InitSeccomp(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := os.Stdout.WriteString("loaded\n"); err != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// handFilter gives p the socket on which its init finds f, and returns
// what to close once p has started. libcontainer's init also sends its
// pidfd on that socket (before it tells its parent it is ready, so the
// socket is still open then), and nobody reads it.
func handFilter(p *libcontainer.Process, f *compiledFilter) ([]io.Closer, error) {
	if f == nil {
		return nil, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("seccomp program socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "seccomp-program"), os.NewFile(uintptr(fds[1]), "seccomp-program-init")
	if _, err := ours.Write(encodeFilter(f)); err != nil {
		_ = ours.Close()
		_ = theirs.Close()
		return nil, fmt.Errorf("hand over the seccomp program: %w", err)
	}
	p.PidfdSocket = theirs
	return []io.Closer{ours, theirs}, nil
}

// encodeFilter is f as the init reads it.
func encodeFilter(f *compiledFilter) []byte {
	b := make([]byte, 0, len(filterMagic)+4+len(f.Program))
	b = append(b, filterMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(f.Flags))
	return append(b, f.Program...)
}

// decodeFilter reverses encodeFilter.
func decodeFilter(b []byte) (*compiledFilter, error) {
	rest, ok := strings.CutPrefix(string(b), filterMagic)
	if !ok || len(rest) < 4 || (len(rest)-4)%8 != 0 || len(rest) == 4 {
		return nil, errors.New("malformed seccomp program from the shim")
	}
	return &compiledFilter{Flags: uint(binary.LittleEndian.Uint32([]byte(rest[:4]))), Program: []byte(rest[4:])}, nil
}

// receiveFilter reads the program the shim handed this init, if it handed
// one: then libcontainer was given no profile, and the init must load this
// program where libcontainer would have loaded its own.
func receiveFilter() (*compiledFilter, error) {
	env := os.Getenv("_LIBCONTAINER_PIDFD_SOCK")
	if env == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(env)
	if err != nil {
		return nil, fmt.Errorf("pidfd socket: %w", err)
	}
	buf := make([]byte, 256<<10)
	// The shim writes it before it starts the init.
	n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
	if err != nil {
		return nil, fmt.Errorf("receive the seccomp program: %w", err)
	}
	return decodeFilter(buf[:n])
}

// load loads f into the calling thread, as libcontainer loads a profile.
func (f *compiledFilter) load() error {
	prog := unix.SockFprog{
		Len:    uint16(len(f.Program) / 8),
		Filter: (*unix.SockFilter)(unsafe.Pointer(unsafe.SliceData(f.Program))),
	}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.Flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f)
	if errno != 0 {
		return fmt.Errorf("seccomp(SET_MODE_FILTER): %w", errno)
	}
	return nil
}

// filterHook loads the init's program when libcontainer logs that it read
// procRun, on libcontainer's own thread and at the point where it would
// load a profile itself.
type filterHook struct {
	f      *compiledFilter
	loaded bool
}

func (h *filterHook) Levels() []logrus.Level { return []logrus.Level{logrus.DebugLevel} }

func (h *filterHook) Fire(e *logrus.Entry) error {
	if h.loaded || e.Message != procRunRead {
		return nil
	}
	if err := h.f.load(); err != nil {
		// libcontainer's init turns a panic into the error it sends its
		// parent, which fails the start.
		panic(fmt.Errorf("load the container's seccomp filter: %w", err))
	}
	h.loaded = true
	return nil
}

// armFilter prepares this init to load the program the shim handed it.
func armFilter() error {
	f, err := receiveFilter()
	if err != nil || f == nil {
		return err
	}
	// libcontainer logs procRun at debug level; what it logs goes to the
	// shim, which drops it below warnings.
	if err := os.Setenv("_LIBCONTAINER_LOGLEVEL", strconv.Itoa(int(logrus.DebugLevel))); err != nil {
		return err
	}
	logrus.AddHook(&filterHook{f: f})
	return nil
}

// errNotFiltered says a process that was handed a compiled profile runs
// without it.
var errNotFiltered = errors.New("the container's process did not load its seccomp filter")

// checkFiltered returns errNotFiltered unless process pid is in seccomp
// filter mode; an error wrapping fs.ErrNotExist if it is gone.
func checkFiltered(pid int) error {
	mode, err := statusField(fmt.Sprintf("/proc/%d/status", pid), "Seccomp")
	switch {
	case errors.Is(err, errNoStatusField) || (err == nil && mode != "2"):
		return errNotFiltered
	case err != nil:
		return fmt.Errorf("check the seccomp filter: %w", err)
	}
	return nil
}

// confirmFiltered returns nil when p was handed no program, or runs under
// it. Otherwise it kills p and returns why; a p already gone passes when
// mayBeGone (an exec'd command runs at once, and a short one may have
// ended: the init's check at the container's start, which can't come too
// late, is the one that guards the mechanism).
func (s *shim) confirmFiltered(p *libcontainer.Process, mayBeGone bool) error {
	if s.cfg.Filter == nil {
		return nil
	}
	pid, err := p.Pid()
	if err == nil {
		err = checkFiltered(pid)
	}
	if err == nil || (mayBeGone && errors.Is(err, fs.ErrNotExist)) {
		return nil
	}
	_ = p.Signal(unix.SIGKILL)
	_, _ = p.Wait()
	return err
}
