package launcher

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestMeasureStartLatency measures how long a `true` container takes
// through the shim (Start, Begin, Wait: the container destroyed) against
// `runc run` of the same spec and rootfs. It only reports; timings in a
// shared machine's test run prove nothing, so it runs only when
// FUSEBOX_MEASURE=N (N runs of each) is set.
func TestMeasureStartLatency(t *testing.T) {
	needRoot(t)
	n, _ := strconv.Atoi(os.Getenv("FUSEBOX_MEASURE"))
	if n <= 0 {
		t.Skip("set FUSEBOX_MEASURE=N to measure start latency")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("no runc")
	}
	rootfs := busyboxRootfs(t)
	ctx := context.Background()
	spec := func(id, state string) Options {
		return Options{ID: id, Rootfs: rootfs, StateDir: state, Args: []string{"true"}}
	}
	shimRun := func(i int) time.Duration { return timeTrue(ctx, t, rootfs, SeccompDefault) }
	runcRoot := t.TempDir()
	runcRun := func(i int) time.Duration {
		id := testID(t)
		bundle := t.TempDir()
		s, err := BuildSpec(spec(id, bundle))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeEtcFiles(Config{StateDir: bundle, Spec: s}); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(s)
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cmd := exec.Command(runc, "--root", runcRoot, "run", "--bundle", bundle, id)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("runc run: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	// Alternate the two, so that the machine's load (shared CPU) falls on
	// both alike.
	shimRun(-1) // warm the page cache
	runcRun(-1)
	var all1, all2 []time.Duration
	for i := range n {
		all1 = append(all1, shimRun(i))
		all2 = append(all2, runcRun(i))
	}
	slices.Sort(all1)
	slices.Sort(all2)
	ms, mr := all1[n/2], all2[n/2]
	t.Logf("start+run+destroy of `true`, median of %d: shim %v, runc run %v (ratio %.2f)", n, ms, mr, float64(ms)/float64(mr))
	t.Logf("shim: %v", all1)
	t.Logf("runc: %v", all2)
}

// TestMeasureSeccompCost measures what Docker's default seccomp profile
// adds to a container's start: `true` through the shim with the profile
// and unconfined, alternated, and the daemon's part, BuildSpec. Only with
// FUSEBOX_MEASURE=N set, like TestMeasureStartLatency.
func TestMeasureSeccompCost(t *testing.T) {
	needSeccomp(t)
	n, _ := strconv.Atoi(os.Getenv("FUSEBOX_MEASURE"))
	if n <= 0 {
		t.Skip("set FUSEBOX_MEASURE=N to measure the cost of seccomp")
	}
	rootfs := busyboxRootfs(t)
	ctx := context.Background()
	run := func(seccomp string) time.Duration { return timeTrue(ctx, t, rootfs, seccomp) }
	run("")
	run(SeccompUnconfined)
	// Wall time, alternated; and the CPU time of the shims and inits
	// (reaped children: the spare shim started during the last run of a
	// batch is counted in the next), which a loaded machine disturbs less.
	childCPU := func() time.Duration {
		var ru unix.Rusage
		_ = unix.Getrusage(unix.RUSAGE_CHILDREN, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var conf, unconf []time.Duration
	for range n {
		conf = append(conf, run(SeccompDefault))
		unconf = append(unconf, run(SeccompUnconfined))
	}
	slices.Sort(conf)
	slices.Sort(unconf)
	t.Logf("start+run+destroy of `true`, median of %d: default profile %v, unconfined %v (+%v)", n, conf[n/2], unconf[n/2], conf[n/2]-unconf[n/2])
	t.Logf("default:    %v", conf)
	t.Logf("unconfined: %v", unconf)
	var cpuConf, cpuUnconf time.Duration
	for range 3 {
		c0 := childCPU()
		for range n {
			run(SeccompDefault)
		}
		c1 := childCPU()
		for range n {
			run(SeccompUnconfined)
		}
		c2 := childCPU()
		cpuConf += c1 - c0
		cpuUnconf += c2 - c1
	}
	t.Logf("CPU time of shim and init per start, %d starts each: default profile %v, unconfined %v (+%v)",
		3*n, cpuConf/time.Duration(3*n), cpuUnconf/time.Duration(3*n), (cpuConf-cpuUnconf)/time.Duration(3*n))

	o := Options{ID: "m", Rootfs: rootfs, StateDir: "/s", Args: []string{"true"}}
	spec := func(seccomp string) (time.Duration, int) {
		o.Seccomp = seccomp
		const k = 200
		start := time.Now()
		var s *specs.Spec
		for range k {
			s, _ = BuildSpec(o)
		}
		b, _ := json.Marshal(s)
		return time.Since(start) / k, len(b)
	}
	d1, n1 := spec(SeccompDefault)
	d2, n2 := spec(SeccompUnconfined)
	start := time.Now()
	for range 200 {
		_, _ = profiles.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: defaultCapabilities}}})
	}
	t.Logf("BuildSpec: %v with the (cached) default profile, %v unconfined; uncached profile %v; spec JSON %d bytes against %d",
		d1, d2, time.Since(start)/200, n1, n2)
}

// timeTrue runs `true` in rootfs through the shim (Start, Begin, Wait: the
// container destroyed) with the given seccomp setting, and returns how
// long that took.
func timeTrue(ctx context.Context, t *testing.T, rootfs, seccomp string) time.Duration {
	t.Helper()
	o := Options{ID: testID(t), Rootfs: rootfs, StateDir: filepath.Join(t.TempDir(), "state"), Args: []string{"true"}, Seccomp: seccomp}
	s, err := BuildSpec(o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sh, err := Start(ctx, Config{ID: o.ID, StateDir: o.StateDir, Spec: s, Exe: fuseboxBin})
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := sh.Wait(ctx); err != nil || st.ExitCode != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	if err := AwaitGone(ctx, o.StateDir); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}
