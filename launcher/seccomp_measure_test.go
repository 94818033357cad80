//go:build cgo && seccomp

package launcher

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// TestMeasureSeccompCompile times what libcontainer's init does with the
// default profile before it loads it (seccomp.InitSeccomp): a libseccomp
// filter with a rule per syscall, binary-tree optimised, exported as BPF.
// libcontainer then patches the BPF (patchbpf, for ENOSYS on syscalls
// unknown to the profile) and loads it; those are not timed here. Only
// with FUSEBOX_MEASURE=N set.
func TestMeasureSeccompCompile(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FUSEBOX_MEASURE"))
	if n <= 0 {
		t.Skip("set FUSEBOX_MEASURE=N to measure the filter compile")
	}
	p, err := defaultProfile()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := specconv.SetupSeccomp(p)
	if err != nil {
		t.Fatal(err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	compile := func(optimize int, arches func(string) bool) {
		f, err := libseccomp.NewFilter(libseccomp.ActErrno.SetReturnCode(1))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Release()
		for _, a := range cfg.Architectures {
			if !arches(a) {
				continue
			}
			arch, err := libseccomp.GetArchFromString(a)
			if err != nil {
				t.Fatal(err)
			}
			_ = f.AddArch(arch)
		}
		if optimize > 0 {
			_ = f.SetOptimize(optimize)
		}
		for _, c := range cfg.Syscalls {
			nr, err := libseccomp.GetSyscallFromName(c.Name)
			if err != nil {
				continue
			}
			if len(c.Args) == 0 {
				if err := f.AddRule(nr, libseccomp.ActAllow); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var conds []libseccomp.ScmpCondition
			for _, a := range c.Args {
				cond, err := libseccomp.MakeCondition(a.Index, libseccomp.ScmpCompareOp(a.Op), a.Value, a.ValueTwo)
				if err != nil {
					t.Fatal(err)
				}
				conds = append(conds, cond)
			}
			_ = f.AddRuleConditional(nr, libseccomp.ActAllow, conds)
		}
		if err := f.ExportBPF(devnull); err != nil {
			t.Fatal(err)
		}
	}
	all := func(string) bool { return true }
	none := func(string) bool { return false }
	for _, v := range []struct {
		what     string
		optimize int
		arches   func(string) bool
	}{
		{"as libcontainer builds it (binary tree, the profile's architectures " + strings.Join(cfg.Architectures, " ") + ")", 2, all},
		{"without the binary tree", 0, all},
		{"native architecture only", 2, none},
		{"without x32", 2, func(a string) bool { return a != "x32" }},
		{"without x86", 2, func(a string) bool { return a != "x86" }},
	} {
		compile(v.optimize, v.arches)
		start := time.Now()
		for range n {
			compile(v.optimize, v.arches)
		}
		t.Logf("default profile (%d syscall rules), %s: built and exported in %v each (%d runs)", len(cfg.Syscalls), v.what, time.Since(start)/time.Duration(n), n)
	}
}
