package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/bench"
)

func init() { register(newBenchCmd) }

type benchOptions struct {
	quick                  bool
	runs, minRuns          int
	budget, totalBudget    time.Duration
	cacheDir, outDir       string
	compare, from, fusebox string
	fuseboxOverlay         string
	only, skip, backends   string
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [OPTIONS]",
		Short: "Measure layer I/O side by side with kernel overlayfs and fuse-overlayfs",
		Long: `Build (or reuse) the benchmark data set, mount it on every backend (native copy,
kernel overlayfs, fuse-overlayfs, fusebox-overlay, fusebox image mount) and measure each
workload, median of --runs. Writes bench.md, bench.json and bench.png to --out. Needs root.

The figures that need a daemon (image mount, container start, diff, commit, memory) run on a
daemon the harness starts for itself from the --fusebox binary, on a root and socket under the
cache directory, and stops at the end: the global --root and -H, and the machine's daemon and
store, are never used.`,
		Args:                  cobra.NoArgs,
		DisableFlagsInUseLine: true,
		RunE:                  func(cmd *cobra.Command, args []string) error { return runBench(cmd, o) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.quick, "quick", false, "Scaled-down data set and fewer runs: a smoke run of about a minute")
	f.IntVar(&o.runs, "runs", 0, "Measured runs per figure (default 5, 1 with --quick)")
	f.IntVar(&o.minRuns, "min-runs", 3, "Runs every figure gets even past its --budget")
	f.DurationVar(&o.budget, "budget", 20*time.Second, "Time per figure after which it stops at --min-runs runs (0: no limit)")
	f.DurationVar(&o.totalBudget, "total-budget", 12*time.Minute, "Time for all figures, shared among those left (0: no limit); --min-runs still applies")
	f.StringVar(&o.cacheDir, "cache-dir", "/var/cache/fusebox-bench", "Where the data set is built and kept")
	f.StringVar(&o.outDir, "out", "bench-out", "Directory for bench.md, bench.json and bench.png")
	f.StringVar(&o.compare, "compare", "", "Print the change of every figure against this earlier bench.json")
	f.StringVar(&o.from, "from", "", "Do not measure: render (and --compare) this bench.json instead")
	f.StringVar(&o.fusebox, "fusebox", "", "fusebox executable for the daemon figures (default: the fusebox next to this binary)")
	f.StringVar(&o.fuseboxOverlay, "fusebox-overlay", "", "fusebox-overlay executable (default: next to fusebox, then PATH)")
	f.StringVar(&o.only, "only", "", "Run only workloads whose name matches this regular expression")
	f.StringVar(&o.skip, "skip", "", "Skip workloads whose name matches this regular expression")
	f.StringVar(&o.backends, "backends", "", "Run only backends matching this regular expression (the two anchors always run)")
	return cmd
}

func runBench(cmd *cobra.Command, o benchOptions) error {
	var old *bench.Report
	if o.compare != "" {
		var err error
		if old, err = bench.ReadReportFile(o.compare); err != nil {
			return err
		}
	}
	var rep *bench.Report
	var interrupted error
	if o.from != "" {
		var err error
		if rep, err = bench.ReadReportFile(o.from); err != nil {
			return err
		}
	} else {
		if o.runs == 0 {
			o.runs = 5
			if o.quick {
				o.runs = 1
			}
		}
		if o.fusebox == "" {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the fusebox executable: %w", err)
			}
			o.fusebox = filepath.Join(filepath.Dir(exe), "fusebox")
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		var err error
		rep, err = bench.Run(ctx, bench.Config{
			CacheDir: o.cacheDir, Runs: o.runs, MinRuns: o.minRuns, CaseBudget: o.budget, TotalBudget: o.totalBudget, Quick: o.quick, Fusebox: o.fusebox,
			FuseboxOverlay: o.fuseboxOverlay,
			Only:           o.only, Skip: o.skip, Backends: o.backends, Log: cmd.ErrOrStderr(),
		})
		if err != nil && (rep == nil || !errors.Is(err, context.Canceled)) {
			return err
		}
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "interrupted: writing the figures taken so far")
			interrupted = fmt.Errorf("bench interrupted: %w", err)
		}
	}
	if err := writeBenchFiles(rep, o.outDir); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if err := rep.WriteMarkdown(out); err != nil {
		return err
	}
	if old != nil {
		fmt.Fprintln(out)
		if err := bench.Compare(out, old, rep); err != nil {
			return err
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", filepath.Join(o.outDir, "bench.{md,json,png}"))
	return interrupted
}

func writeBenchFiles(rep *bench.Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench output: %w", err)
	}
	for name, write := range map[string]func(*os.File) error{
		"bench.json": func(f *os.File) error { return rep.WriteJSON(f) },
		"bench.md":   func(f *os.File) error { return rep.WriteMarkdown(f) },
		"bench.png":  func(f *os.File) error { return rep.WritePNG(f) },
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("bench output: %w", err)
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("bench output %s: %w", name, err)
		}
	}
	return nil
}
