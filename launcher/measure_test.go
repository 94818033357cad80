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
	shimRun := func(i int) time.Duration {
		id := testID(t)
		state := filepath.Join(t.TempDir(), "state")
		s, err := BuildSpec(spec(id, state))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		sh, err := Start(ctx, Config{ID: id, StateDir: state, Spec: s, Exe: fuseboxBin})
		if err != nil {
			t.Fatal(err)
		}
		if err := sh.Begin(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := sh.Wait(ctx); err != nil || st.ExitCode != 0 {
			t.Fatalf("%+v %v", st, err)
		}
		return time.Since(start)
	}
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
