package launcher

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestPrecompiledFilter checks that a container whose init loads the
// compiled program runs under exactly what libcontainer loads when it
// compiles the profile itself: the same BPF program, read back from the
// kernel, and the same seccomp state in /proc (mode, number of filters,
// no_new_privs, and the speculation setting the filter's flags decide).
// It also checks that each start took the path it was meant to.
func TestPrecompiledFilter(t *testing.T) {
	needPrecompile(t)
	compiled := map[string][]byte{}
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"profile", Options{Seccomp: denyMkdir}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var progs [2][]byte
			var states [2]string
			for i, precompile := range []bool{true, false} {
				progs[i], states[i] = filterOfContainer(t, c.opts, precompile)
			}
			// libcontainer puts the architectures of its ENOSYS stub in
			// map order, so two of its own compiles can differ in that
			// order; what must match is every verdict.
			if len(progs[0]) == 0 || len(progs[0]) != len(progs[1]) {
				t.Fatalf("compiled once: %d bytes; compiled by libcontainer: %d bytes", len(progs[0]), len(progs[1]))
			}
			if d := verdictDifference(t, progs[0], progs[1]); d != "" {
				t.Fatalf("%s: compiled once, %s", c.name, d)
			}
			compiled[c.name] = progs[0]
			if states[0] != states[1] {
				t.Fatalf("seccomp state compiled once:\n%s\ncompiled by libcontainer:\n%s", states[0], states[1])
			}
			if !strings.Contains(states[0], "Seccomp:\t2\n") || !strings.Contains(states[0], "Seccomp_filters:\t1\n") {
				t.Fatalf("not one seccomp filter:\n%s", states[0])
			}
		})
	}
	// The comparison tells programs apart: Docker's profile is not the
	// one that only refuses mkdir.
	if len(compiled) == 2 && verdictDifference(t, compiled["default"], compiled["profile"]) == "" {
		t.Fatal("the default profile and the mkdir one give the same verdicts")
	}
}

// needPrecompile skips a test where the daemon can't compile a profile
// once: it reads the program back through ptrace, which a container
// without CAP_SYS_PTRACE or CAP_SYS_ADMIN, or Yama's ptrace_scope 3,
// refuses.
func needPrecompile(t *testing.T) {
	t.Helper()
	needSeccomp(t)
	if !canPrecompile(t) {
		t.Skip("profiles can't be compiled once here: ptrace is refused")
	}
}

// canPrecompile reports whether Docker's profile can be compiled once
// here, and fails the test on any other error than ptrace's refusal.
func canPrecompile(t *testing.T) bool {
	t.Helper()
	_, err := defaultFilter(context.Background(), fuseboxBin)
	refused := errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
	if err != nil && !refused {
		t.Fatalf("compile Docker's profile: %v", err)
	}
	return err == nil
}

// filterOfContainer starts a container with o, its profile compiled once
// or not, and returns the program its process runs under and the seccomp
// lines of its /proc status.
func filterOfContainer(t *testing.T, o Options, precompile bool) ([]byte, string) {
	t.Helper()
	precompileFilters = precompile
	defer func() { precompileFilters = true }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o.Args = []string{"sleep", "100"}
	s, cfg, err := startContainer(t, ctx, container{opts: o})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx, 9, time.Second)
	b, err := os.ReadFile(filepath.Join(cfg.StateDir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if handed := bytes.Contains(b, []byte(`"filter":`)); handed != precompile {
		t.Fatalf("precompile %v, but the shim was handed a program: %v", precompile, handed)
	}
	if err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	prog, err := loadedFilter(s.Pid())
	if err != nil {
		t.Fatal(err)
	}
	var state strings.Builder
	for _, k := range []string{"NoNewPrivs", "Seccomp", "Seccomp_filters", "Speculation_Store_Bypass"} {
		v, err := statusField(filepath.Join("/proc", strconv.Itoa(s.Pid()), "status"), k)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&state, "%s:\t%s\n", k, v)
	}
	return prog, state.String()
}

// TestPrecompiledFilterRefused checks that a program the kernel refuses
// fails the start with the kernel's reason, and nothing runs unconfined.
func TestPrecompiledFilterRefused(t *testing.T) {
	needPrecompile(t)
	o := Options{ID: testID(t), Rootfs: busyboxRootfs(t), StateDir: filepath.Join(t.TempDir(), "state"), Args: []string{"true"}}
	spec, err := BuildSpec(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := precompiledFilter(ctx, fuseboxBin, spec)
	if err != nil || f == nil {
		t.Fatalf("compile: %v %v", f, err)
	}
	// A program whose first instruction jumps past its end.
	bad := &compiledFilter{Flags: f.Flags, Program: append([]byte{0x05, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, f.Program...)}
	_, err = start(ctx, Config{ID: o.ID, StateDir: o.StateDir, Spec: spec, Exe: fuseboxBin}, bad)
	if err == nil || !strings.Contains(err.Error(), "seccomp") {
		t.Fatalf("start with a refused program: %v", err)
	}
	if err := AwaitGone(ctx, o.StateDir); err != nil {
		t.Fatal(err)
	}
}

// verdictDifference runs two seccomp programs on every syscall number of
// the three x86 architectures (and one they don't know), with arguments
// that Docker's profile tells apart, and describes the first input they
// give different verdicts for ("" if none).
func verdictDifference(t *testing.T, a, b []byte) string {
	t.Helper()
	vms := make([]*bpf.VM, 2)
	for i, prog := range [][]byte{a, b} {
		raw := make([]bpf.RawInstruction, len(prog)/8)
		for j := range raw {
			in := prog[j*8:]
			raw[j] = bpf.RawInstruction{Op: binary.LittleEndian.Uint16(in), Jt: in[2], Jf: in[3], K: binary.LittleEndian.Uint32(in[4:])}
		}
		ins, ok := bpf.Disassemble(raw)
		if !ok {
			t.Fatalf("program %d has instructions x/net/bpf can't run", i)
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Fatal(err)
		}
		vms[i] = vm
	}
	const (
		archX8664   = 0xc000003e
		archI386    = 0x40000003
		archAarch64 = 0xc00000b7
		x32Bit      = 0x40000000
	)
	argSets := [][6]uint64{
		{},
		{0x10000000, 0x10000000, 0x10000000, 0x10000000, 0x10000000, 0x10000000}, // CLONE_NEWUSER
		{0x7e020000, 1, 2, 3, 4, 5}, // clone's namespace flags
		{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
		{8, 0x20008, 0xffffffff, 0, 0, 0}, // personality values
		{1 << 40, 1 << 33, 0, 0, 0, 0},
	}
	n := 0
	for _, arch := range []uint32{archX8664, archI386, archAarch64} {
		for _, base := range []uint32{0, x32Bit} {
			for nr := base; nr < base+1100; nr++ {
				for _, args := range argSets {
					data := seccompData(nr, arch, args)
					va, erra := vms[0].Run(data)
					vb, errb := vms[1].Run(data)
					if va != vb || (erra == nil) != (errb == nil) {
						return fmt.Sprintf("arch %#x syscall %d args %x: verdict %#x (%v) against %#x (%v)", arch, nr, args, va, erra, vb, errb)
					}
					n++
				}
			}
		}
	}
	t.Logf("%d verdicts compared", n)
	return ""
}

// seccompData is struct seccomp_data as x/net/bpf's VM reads it: seccomp
// programs load 32-bit words in the host's order (little endian here),
// the VM in network order, so each word is written big endian.
func seccompData(nr, arch uint32, args [6]uint64) []byte {
	words := []uint32{nr, arch, 0, 0}
	for _, a := range args {
		words = append(words, uint32(a), uint32(a>>32))
	}
	b := make([]byte, 0, 4*len(words))
	for _, w := range words {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

// TestCheckFiltered checks the guard that fails a start whose init was
// handed a program but runs without it: the test binary runs unconfined.
func TestCheckFiltered(t *testing.T) {
	if err := checkFiltered(os.Getpid()); err == nil {
		t.Skip("this test runs under a seccomp filter already")
	} else if !errors.Is(err, errNotFiltered) {
		t.Fatalf("unconfined test process: %v", err)
	}
	if err := checkFiltered(1 << 30); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no such process: %v", err)
	}
}
