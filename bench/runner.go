package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A Case is one cell of the report: one workload on one backend. The runner
// calls Available, then Setup once, then Run once per measured run, then
// Teardown, whatever happened before.
type Case struct {
	Workload string
	Backend  string
	Unit     string
	Better   Better
	Note     string
	// Available returns nil, or an error wrapping ErrMissing saying why the
	// case cannot be measured. Nil means always available.
	Available func(ctx context.Context) error
	Setup     func(ctx context.Context) error
	Run       func(ctx context.Context, i int) (float64, error)
	Teardown  func(ctx context.Context) error
}

// Config is one harness run.
type Config struct {
	// CacheDir keeps the data set between runs.
	CacheDir string
	// Runs is the number of measured runs per figure (the median is reported).
	Runs int
	// CaseBudget bounds the time spent on one figure: once a figure has
	// MinRuns runs and has used its budget, it stops at the runs it has
	// (the report shows how many). Zero means no bound.
	CaseBudget time.Duration
	// TotalBudget, when set, shares the time left among the figures left:
	// a figure's budget is at most what is left divided by the figures
	// still to run, so that a run fits its time whatever the machine (the
	// runs column shows the cost). Zero means no bound.
	TotalBudget time.Duration
	// MinRuns is the number of runs a figure gets whatever its budget
	// (capped at Runs); zero means 3.
	MinRuns int
	// Quick uses the scaled-down data set.
	Quick bool
	// Fusebox is the fusebox executable used for the image mount, container,
	// diff, commit and memory figures; empty reports them missing.
	Fusebox string
	// FuseboxOverlay is the fusebox-overlay executable; empty looks next
	// to the running executable, then in PATH.
	FuseboxOverlay string
	// Only and Skip select workloads by a regular expression on their name;
	// Backends selects backends the same way. Empty means all.
	Only, Skip, Backends string
	// Log receives progress lines.
	Log io.Writer

	// server is the harness's own fusebox daemon, which Run sets up on a
	// root under its scratch directory; every fusebox command goes to it.
	server *Server
}

// errNoMoreRuns, from a Case's Run, ends its runs early without an error:
// a figure that replays the samples another figure took has no more.
var errNoMoreRuns = errors.New("no more runs")

// ErrBusy is returned when another harness run holds the cache directory.
var ErrBusy = errors.New("another bench run is using it")

// Run builds (or reuses) the data set, measures every case and returns the
// report. Every mount it makes is gone when it returns, also when ctx is
// cancelled.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Runs < 1 {
		return nil, fmt.Errorf("runs must be at least 1, got %d", cfg.Runs)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	began := time.Now()
	filter, err := newFilter(cfg)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("bench needs root (mounts, dropping caches)")
	}
	spec := FullSpec()
	if cfg.Quick {
		spec = QuickSpec()
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	// One run at a time per cache: a second one would rebuild or unmount
	// under the first.
	lock, err := os.OpenFile(filepath.Join(cfg.CacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, fmt.Errorf("cache dir %s: %w", cfg.CacheDir, ErrBusy)
	}
	ds, err := PrepareDataset(ctx, cfg.CacheDir, spec, cfg.Log)
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(cfg.CacheDir, "scratch-")
	if err != nil {
		return nil, fmt.Errorf("scratch dir: %w", err)
	}
	defer func() {
		if err := removeScratch(scratch); err != nil {
			fmt.Fprintf(cfg.Log, "warning: %v\n", err)
		}
	}()

	if cfg.Fusebox != "" {
		// The harness's own daemon, started on first use from the same
		// binary, on a root under scratch: nothing of a run stays in the
		// machine's store, and the memory figures know its process.
		cfg.server = &Server{Exe: cfg.Fusebox, Dir: filepath.Join(scratch, "daemon")}
		defer func() {
			if err := cfg.server.Stop(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(cfg.Log, "warning: %v\n", err)
			}
		}()
	}

	fio, _ := exec.LookPath("fio")
	backends := Backends(cfg, ds)
	rep := newReport(cfg, ds)
	for _, b := range backends {
		info := BackendInfo{Name: b.Name()}
		if d, ok := b.(Describer); ok {
			info.Detail = d.Describe()
		}
		if err := b.Available(ctx); err != nil {
			info.Missing = err.Error()
		}
		rep.Backends = append(rep.Backends, info)
	}
	var cases []Case
	for _, w := range Workloads(ds, fio) {
		if !filter.workload(w.Name) {
			continue
		}
		for _, b := range backends {
			if filter.backend(b.Name()) {
				cases = append(cases, mountCase(w, b, ds, scratch))
			}
		}
	}
	for _, c := range Scenarios(cfg, ds, scratch) {
		if filter.workload(c.Workload) && filter.backend(c.Backend) {
			cases = append(cases, c)
		}
	}
	runStart := time.Now()
	for i, c := range cases {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		fmt.Fprintf(cfg.Log, "[%d/%d] %s — %s: ", i+1, len(cases), c.Workload, c.Backend)
		caseStart := time.Now()
		ccfg := cfg
		if cfg.TotalBudget > 0 {
			share := (cfg.TotalBudget - time.Since(runStart)) / time.Duration(len(cases)-i)
			if ccfg.CaseBudget == 0 || share < ccfg.CaseBudget {
				ccfg.CaseBudget = max(share, time.Millisecond)
			}
		}
		f := runCase(ctx, c, ccfg)
		took := time.Since(caseStart).Round(10 * time.Millisecond)
		switch {
		case f.Missing != "":
			fmt.Fprintln(cfg.Log, f.Missing)
		case f.Error != "":
			fmt.Fprintf(cfg.Log, "error: %s [%s]\n", f.Error, took)
		default:
			fmt.Fprintf(cfg.Log, "%s %s (min %s, max %s) [%s]\n", num(f.Median), f.Unit, num(f.Min), num(f.Max), took)
		}
		rep.Figures = append(rep.Figures, f)
	}
	rep.computeRatios()
	rep.Seconds = time.Since(began).Round(time.Second).Seconds()
	fmt.Fprintf(cfg.Log, "measured in %s (%s with the data set check)\n", time.Since(runStart).Round(time.Second), time.Since(began).Round(time.Second))
	return rep, ctx.Err()
}

func runCase(ctx context.Context, c Case, cfg Config) (f Figure) {
	f = Figure{Workload: c.Workload, Backend: c.Backend, Unit: c.Unit, Better: c.Better, Note: c.Note}
	if c.Available != nil {
		if err := c.Available(ctx); err != nil {
			f.Missing = err.Error()
			if !errors.Is(err, ErrMissing) {
				f.Missing = missingf("%v", err).Error()
			}
			return f
		}
	}
	if c.Teardown != nil {
		defer func() {
			if err := c.Teardown(context.WithoutCancel(ctx)); err != nil && f.Error == "" {
				f.Error = "teardown: " + err.Error()
			}
		}()
	}
	if c.Setup != nil {
		if err := c.Setup(ctx); err != nil {
			if errors.Is(err, ErrMissing) {
				f.Missing = err.Error()
			} else {
				f.Error = "setup: " + err.Error()
			}
			return f
		}
	}
	minRuns := cfg.MinRuns
	if minRuns == 0 {
		minRuns = 3
	}
	start := time.Now()
	for i := 0; i < cfg.Runs; i++ {
		if cfg.CaseBudget > 0 && i >= minRuns && time.Since(start) >= cfg.CaseBudget {
			break
		}
		v, err := c.Run(ctx, i)
		if errors.Is(err, errNoMoreRuns) && i > 0 {
			break
		}
		if err != nil {
			f.Error = err.Error()
			f.Runs = nil
			return f
		}
		f.Runs = append(f.Runs, v)
	}
	f.summarize()
	return f
}

// mountCase turns a workload on a backend into a case. Cold workloads and
// workloads that write get a fresh mount (and fresh upper and work
// directories) per run; a warm read-only workload gets one mount, one
// unmeasured warm-up pass, then all its runs on that warm mount.
func mountCase(w Workload, b Backend, ds *Dataset, scratch string) Case {
	c := Case{Workload: w.Name, Backend: b.Name(), Unit: w.Unit, Better: w.Better, Note: w.Note,
		Available: b.Available}
	prepare := func(ctx context.Context) error {
		if p, ok := b.(Preparer); ok {
			return p.Prepare(ctx, ds.Layers)
		}
		return nil
	}
	warmUp := func(ctx context.Context, env Env) error {
		if w.Warmup != nil {
			return w.Warmup(ctx, env)
		}
		_, err := w.Measure(ctx, env)
		return err
	}
	if !w.Cold && !w.MountTime && w.Setup == nil && w.Cleanup == nil {
		var env Env
		var release func() error
		c.Setup = func(ctx context.Context) (err error) {
			if err := prepare(ctx); err != nil {
				return err
			}
			if env, release, _, err = freshMount(ctx, b, ds, scratch); err != nil {
				return err
			}
			if err := warmUp(ctx, env); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			return nil
		}
		c.Run = func(ctx context.Context, i int) (float64, error) { return w.Measure(ctx, env) }
		c.Teardown = func(ctx context.Context) error {
			if release == nil {
				return nil
			}
			return release()
		}
		return c
	}
	c.Setup = prepare
	c.Run = func(ctx context.Context, i int) (v float64, err error) {
		if w.MountTime {
			if err := dropCaches(); err != nil {
				return 0, err
			}
		}
		env, release, mountMS, err := freshMount(ctx, b, ds, scratch)
		if err != nil {
			return 0, err
		}
		defer func() {
			if rerr := release(); rerr != nil && err == nil {
				err = rerr
			}
		}()
		if w.MountTime {
			return mountMS, nil
		}
		if w.Setup != nil {
			if err := w.Setup(ctx, env); err != nil {
				return 0, fmt.Errorf("setup: %w", err)
			}
		}
		if w.Cleanup != nil {
			defer func() {
				if cerr := w.Cleanup(context.WithoutCancel(ctx), env); cerr != nil && err == nil {
					err = fmt.Errorf("cleanup: %w", cerr)
				}
			}()
		}
		if w.Cold {
			if err := dropCaches(); err != nil {
				return 0, err
			}
		} else if err := warmUp(ctx, env); err != nil {
			return 0, fmt.Errorf("warm-up: %w", err)
		}
		return w.Measure(ctx, env)
	}
	return c
}

// freshMount mounts the data set with b on new directories under scratch
// and returns the mount, how long Mount took (until the mount was usable),
// and the function that unmounts and removes it all.
func freshMount(ctx context.Context, b Backend, ds *Dataset, scratch string) (env Env, release func() error, mountMS float64, err error) {
	dir, err := os.MkdirTemp(scratch, "run-")
	if err != nil {
		return env, nil, 0, err
	}
	env = Env{Root: filepath.Join(dir, "mnt"), Scratch: filepath.Join(dir, "tmp"), Data: ds}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{env.Root, env.Scratch, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			removeScratch(dir)
			return env, nil, 0, err
		}
	}
	start := time.Now()
	if err := b.Mount(ctx, ds.Layers, upper, work, env.Root); err != nil {
		removeScratch(dir)
		return env, nil, 0, fmt.Errorf("mount: %w", err)
	}
	mountMS = since(start, "ms")
	release = func() error {
		uerr := b.Unmount(context.WithoutCancel(ctx), env.Root)
		if rerr := removeScratch(dir); uerr == nil && rerr != nil {
			uerr = rerr
		}
		if uerr != nil {
			return fmt.Errorf("unmount: %w", uerr)
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(env.Root, ds.Tree)); err != nil {
		release()
		return env, nil, 0, fmt.Errorf("mount is not usable: %w", err)
	}
	return env, release, mountMS, nil
}

// Backends returns the union-mount backends in report order.
func Backends(cfg Config, ds *Dataset) []Backend {
	fov, fovMissing := "/usr/bin/fuse-overlayfs", ""
	if _, err := os.Stat(fov); err != nil {
		fov, fovMissing = "", "Debian's fuse-overlayfs is not installed (/usr/bin/fuse-overlayfs)"
	}
	fbo, fboMissing := cfg.FuseboxOverlay, ""
	if fbo == "" {
		fbo, fboMissing = FindProgram("fusebox-overlay")
	}
	return []Backend{
		&Native{CacheDir: ds.Dir},
		KernelOverlay{},
		&FuseProgram{Label: FuseOverlayfsName, Path: fov, Missing: fovMissing},
		&FuseProgram{Label: "fusebox-overlay", Path: fbo, Missing: fboMissing},
		&ImageMount{CLI: Fusebox{Path: cfg.Fusebox, Server: cfg.server}, CacheDir: ds.Dir},
	}
}

// The anchors' names, which the ratios are computed against.
const (
	KernelOverlayName = "kernel overlayfs"
	FuseOverlayfsName = "fuse-overlayfs"
)

type filter struct{ only, skip, backends *regexp.Regexp }

func newFilter(cfg Config) (filter, error) {
	var f filter
	for _, x := range []struct {
		expr string
		re   **regexp.Regexp
		flag string
	}{{cfg.Only, &f.only, "only"}, {cfg.Skip, &f.skip, "skip"}, {cfg.Backends, &f.backends, "backends"}} {
		if x.expr == "" {
			continue
		}
		re, err := regexp.Compile(x.expr)
		if err != nil {
			return f, fmt.Errorf("--%s: %w", x.flag, err)
		}
		*x.re = re
	}
	return f, nil
}

func (f filter) workload(name string) bool {
	return (f.only == nil || f.only.MatchString(name)) && (f.skip == nil || !f.skip.MatchString(name))
}

func (f filter) backend(name string) bool {
	// The anchors always run: the ratios need them.
	return f.backends == nil || f.backends.MatchString(name) || name == KernelOverlayName || name == FuseOverlayfsName
}

// median returns the median of xs (the mean of the middle two when even).
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	case v >= 10:
		return fmt.Sprintf("%.2f", v)
	default:
		s := fmt.Sprintf("%.3g", v)
		if strings.Contains(s, "e") {
			s = fmt.Sprintf("%.4f", v)
		}
		return s
	}
}
