package bench

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/internal/testenv"
)

// requireRoot skips tests that mount and drop caches where they cannot.
func requireRoot(t *testing.T) {
	t.Helper()
	testenv.RequireFUSE(t, "mounts and drops caches")
}

var (
	cacheOnce sync.Once
	cacheDir  string
)

// sharedCache is one data set cache for the tests of this package, so the
// quick data set is built once per `go test`, not per test.
func sharedCache(t *testing.T) string {
	cacheOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fusebox-bench-test-")
		if err != nil {
			t.Fatal(err)
		}
		cacheDir = dir
	})
	return cacheDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cacheDir != "" {
		unmountAllUnder(cacheDir)
		os.RemoveAll(cacheDir)
	}
	os.Exit(code)
}

// builtProgram returns the repository's bin/name when `make build` made it,
// else what FindProgram finds, else "".
func builtProgram(name string) string {
	if p, err := filepath.Abs(filepath.Join("..", "bin", name)); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, _ := FindProgram(name)
	return p
}

// mountsUnder lists the mounts left at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	mps, err := mountPoints()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mp := range mps {
		if strings.HasPrefix(mp, dir) {
			out = append(out, mp)
		}
	}
	return out
}

// TestQuickRun runs the whole harness on the quick data set, once per
// figure, so that the harness itself never rots: every anchor figure must
// be measured, every fusebox figure measured or missing with a reason, and
// every output format must come out readable.
func TestQuickRun(t *testing.T) {
	requireRoot(t)
	cache := sharedCache(t)
	// `make test` builds bin/ first: measure the fusebox-overlay and the
	// fusebox it built, so that those backends are exercised as soon as
	// they exist. The daemon figures run on the harness's own daemon, on a
	// root under the cache, never on the machine's.
	overlay, fusebox := builtProgram("fusebox-overlay"), builtProgram("fusebox")
	var log bytes.Buffer
	rep, err := Run(context.Background(), Config{CacheDir: cache, Runs: 1, Quick: true,
		Fusebox: fusebox, FuseboxOverlay: overlay, Log: &log})
	t.Log(log.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if left := mountsUnder(t, cache); len(left) > 0 {
		t.Errorf("mounts left behind: %v", left)
	}
	anchors := 0
	for _, f := range rep.Figures {
		if f.Error != "" {
			t.Errorf("%s on %s: error %s", f.Workload, f.Backend, f.Error)
			continue
		}
		switch f.Backend {
		case KernelOverlayName, FuseOverlayfsName, "native":
			if !f.OK() || f.Median <= 0 || f.Min > f.Median || f.Median > f.Max {
				t.Errorf("%s on %s: no sound figure: %+v", f.Workload, f.Backend, f)
			}
			if f.Backend == KernelOverlayName && (f.VsKernel == nil || *f.VsKernel != 1) {
				t.Errorf("%s: kernel overlayfs against itself is %v, want 1", f.Workload, f.VsKernel)
			}
			anchors++
		default:
			if !f.OK() && !strings.HasPrefix(f.Missing, "missing: ") {
				t.Errorf("%s on %s: neither measured nor missing with a reason: %+v", f.Workload, f.Backend, f)
			}
		}
	}
	if anchors < 2*len(Workloads(&Dataset{Spec: QuickSpec()}, "fio")) {
		t.Errorf("only %d anchor figures", anchors)
	}
	for _, want := range []string{"fusebox-overlay", "fusebox image mount", "fusebox"} {
		found := false
		for _, f := range rep.Figures {
			found = found || f.Backend == want
		}
		if !found {
			t.Errorf("backend %q not in the report, not even as missing", want)
		}
	}

	var js, md, img, cmp bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(&js)
	if err != nil {
		t.Fatalf("ReadReport: %v", err)
	}
	if len(back.Figures) != len(rep.Figures) || back.Machine.CPUs == 0 || back.Machine.Kernel == "" {
		t.Errorf("JSON round trip lost data: %d figures, machine %+v", len(back.Figures), back.Machine)
	}
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| mount | kernel overlayfs |") {
		t.Errorf("markdown has no mount row:\n%s", md.String())
	}
	if err := Compare(&cmp, back, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cmp.String(), "| +0.0% | same |") {
		t.Errorf("a report compared with itself shows changes:\n%s", cmp.String())
	}
	if err := rep.WritePNG(&img); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&img); err != nil {
		t.Errorf("plot is not a PNG: %v", err)
	}
}

// TestRunCancelUnmounts cancels a run in the middle of a workload on a
// FUSE mount and checks that nothing stays mounted.
func TestRunCancelUnmounts(t *testing.T) {
	requireRoot(t)
	cache := sharedCache(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once a fuse-overlayfs mount is up.
		for ctx.Err() == nil {
			mps, _ := mountPoints()
			for _, mp := range mps {
				if strings.HasPrefix(mp, cache) {
					time.Sleep(50 * time.Millisecond)
					cancel()
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := Run(ctx, Config{CacheDir: cache, Runs: 3, Quick: true, Only: "^delete", Backends: "^fuse-overlayfs$"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v, want context.Canceled", err)
	}
	if left := mountsUnder(t, cache); len(left) > 0 {
		t.Errorf("mounts left behind after cancel: %v", left)
	}
	if scratch, _ := filepath.Glob(filepath.Join(cache, "scratch-*")); len(scratch) > 0 {
		t.Errorf("scratch dirs left behind: %v", scratch)
	}
}

func TestRunBusyCache(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	// flock locks belong to the open file description, so Run's own open
	// of the same file must find this one held.
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Config{CacheDir: dir, Runs: 1, Quick: true})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Run on a locked cache: %v, want ErrBusy", err)
	}
}

func TestRunBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no runs", Config{CacheDir: t.TempDir(), Runs: 0}},
		{"bad only", Config{CacheDir: t.TempDir(), Runs: 1, Only: "("}},
		{"bad backends", Config{CacheDir: t.TempDir(), Runs: 1, Backends: "[x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tc.cfg); err == nil {
				t.Fatal("Run accepted a bad config")
			}
		})
	}
}
