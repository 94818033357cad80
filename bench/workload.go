package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Better says which way a figure improves.
type Better string

const (
	LowerIsBetter  Better = "lower"
	HigherIsBetter Better = "higher"
)

// Env is what a workload sees of one fresh mount.
type Env struct {
	Root    string   // the mount point: the merged view of the data set
	Scratch string   // a directory off the mount, for the workload's own files
	Data    *Dataset // the data set, for its paths and sizes
}

// A Workload is one figure measured on a mounted backend. A cold or writing
// workload gets a fresh mount with an empty upper directory for each
// measured run: Setup (unmeasured), a cache drop (Cold) or one unmeasured
// warm-up pass, Measure, then Cleanup (unmeasured; it undoes writes on the
// native copy, which has no upper layer to throw away). A warm workload
// without Setup or Cleanup reads only: it gets one mount and one warm-up
// pass, then all its measured runs on that warm mount.
type Workload struct {
	Name   string
	Unit   string
	Better Better
	Cold   bool
	// MountTime makes the measurement the Mount call itself; Measure is nil.
	MountTime bool
	// Note says how the figure is taken, e.g. which fio engine.
	Note string
	// Warmup is the unmeasured pass of a warm run; nil means Measure.
	Warmup  func(ctx context.Context, env Env) error
	Setup   func(ctx context.Context, env Env) error
	Measure func(ctx context.Context, env Env) (float64, error)
	Cleanup func(ctx context.Context, env Env) error
}

// Workloads returns the layer I/O workloads for ds, in report order. fio is
// used for random reads when fioPath is not empty; a Go pread loop otherwise,
// and the workload's note says which.
func Workloads(ds *Dataset, fioPath string) []Workload {
	spec := ds.Spec
	var ws []Workload
	ws = append(ws, Workload{Name: "mount", Unit: "ms", Better: LowerIsBetter, Cold: true, MountTime: true,
		Note: "until the mount is in the mount table"})
	for _, cold := range []bool{true, false} {
		ws = append(ws, Workload{Name: "sequential read, big file" + temp(cold), Unit: "MiB/s", Better: HigherIsBetter,
			Cold: cold, Note: fmt.Sprintf("%s, 1 MiB reads", sizeText(spec.BigSize)), Measure: seqRead})
	}
	if fioPath != "" {
		ws = append(ws,
			fioWorkload(fioPath, "psync", true, spec.RandomIOs),
			fioWorkload(fioPath, "psync", false, 2*spec.RandomIOs),
			fioWorkload(fioPath, "libaio", true, spec.RandomIOs))
	} else {
		for _, cold := range []bool{true, false} {
			n := spec.RandomIOs
			if !cold {
				n *= 2
			}
			ws = append(ws, Workload{Name: "random 4 KiB read, big file" + temp(cold), Unit: "IOPS", Better: HigherIsBetter,
				Cold: cold, Warmup: readBig, Note: fmt.Sprintf("Go pread loop (no fio), %d reads", n), Measure: preadLoop(n)})
		}
	}
	for _, cold := range []bool{true, false} {
		ws = append(ws,
			Workload{Name: "find + stat, tree" + temp(cold), Unit: "s", Better: LowerIsBetter, Cold: cold,
				Note: "find -ls over the small-file tree", Measure: toolRun("find", "{tree}", "-ls")},
			Workload{Name: "read every small file" + temp(cold), Unit: "s", Better: LowerIsBetter, Cold: cold,
				Measure: readTree},
			Workload{Name: "ls -lR, tree" + temp(cold), Unit: "s", Better: LowerIsBetter, Cold: cold,
				Measure: toolRun("ls", "-lR", "{tree}")},
		)
	}
	ws = append(ws,
		Workload{Name: "copy-up: append 1 byte to big file", Unit: "ms", Better: LowerIsBetter, Cold: true,
			Note: "open O_APPEND, write, close", Measure: appendByte, Cleanup: truncateBig},
		Workload{Name: "copy-up: chmod big file", Unit: "ms", Better: LowerIsBetter, Cold: true,
			Measure: chmodBig, Cleanup: chmodBigBack},
		Workload{Name: "copy-up: touch small file", Unit: "ms", Better: LowerIsBetter, Cold: true,
			Measure: touchSmall},
		Workload{Name: fmt.Sprintf("create %s small files", count(spec.Creates)), Unit: "s", Better: LowerIsBetter, Cold: true,
			Note: "512 B each, one new directory", Setup: mkScratchDir, Measure: createFiles, Cleanup: rmScratchDir},
		Workload{Name: fmt.Sprintf("delete %s small files", count(spec.Creates)), Unit: "s", Better: LowerIsBetter, Cold: true,
			Note: "the files created in Setup", Setup: setupDelete, Measure: deleteFiles, Cleanup: rmScratchDir},
		Workload{Name: fmt.Sprintf("untar source tree (%s files)", count(spec.SourceFiles)), Unit: "s", Better: LowerIsBetter, Cold: true,
			Note: "GNU tar -xf", Setup: mkScratchDir, Measure: untar, Cleanup: rmScratchDir},
	)
	return ws
}

func temp(cold bool) string {
	if cold {
		return ", cold"
	}
	return ", warm"
}

// count writes n with thousands separators, as in the report's names.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func sizeText(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func since(t time.Time, unit string) float64 {
	d := time.Since(t)
	switch unit {
	case "ms":
		return float64(d) / float64(time.Millisecond)
	default:
		return d.Seconds()
	}
}

// readBig reads the whole big file once: the warm-up of the random reads,
// so that every block they touch is in the page cache.
func readBig(ctx context.Context, env Env) error {
	_, err := seqRead(ctx, env)
	return err
}

func seqRead(ctx context.Context, env Env) (float64, error) {
	f, err := os.Open(filepath.Join(env.Root, env.Data.Big))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	start := time.Now()
	var n int64
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	secs := time.Since(start).Seconds()
	if n != env.Data.Spec.BigSize {
		return 0, fmt.Errorf("read %d bytes of %d", n, env.Data.Spec.BigSize)
	}
	return float64(n) / (1 << 20) / secs, nil
}

func fioWorkload(fio, engine string, cold bool, ios int) Workload {
	name := "random 4 KiB read, fio " + engine + temp(cold)
	args := []string{"--ioengine=" + engine}
	note := fmt.Sprintf("fio %s, %d reads or 3 s, buffered", engine, ios)
	if engine == "libaio" {
		name = "random 4 KiB read, fio libaio O_DIRECT qd16"
		args = append(args, "--direct=1", "--iodepth=16")
		note = fmt.Sprintf("fio libaio, %d reads or 3 s, O_DIRECT, iodepth 16", ios)
	}
	return Workload{Name: name, Unit: "IOPS", Better: HigherIsBetter, Cold: cold, Note: note,
		Warmup: readBig, Measure: func(ctx context.Context, env Env) (float64, error) {
			full := append([]string{"--name=bench", "--filename=" + filepath.Join(env.Root, env.Data.Big),
				"--readonly", "--rw=randread", "--bs=4k", fmt.Sprintf("--size=%d", env.Data.Spec.BigSize),
				fmt.Sprintf("--io_size=%d", 4096*ios), "--randrepeat=1", "--randseed=1", "--norandommap",
				"--invalidate=0", "--runtime=3", "--output-format=json"}, args...)
			cmd := exec.CommandContext(ctx, fio, full...)
			cmd.Dir = env.Scratch
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				return 0, fmt.Errorf("fio: %w: %s", err, strings.TrimSpace(stderr.String()))
			}
			return parseFioIOPS(out)
		}}
}

// parseFioIOPS reads the read IOPS of the first job from fio's JSON output,
// which may be preceded by notes on stdout.
func parseFioIOPS(out []byte) (float64, error) {
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	var res struct {
		Jobs []struct {
			Error int `json:"error"`
			Read  struct {
				IOPS float64 `json:"iops"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("parse fio output: %w", err)
	}
	if len(res.Jobs) == 0 || res.Jobs[0].Error != 0 || res.Jobs[0].Read.IOPS == 0 {
		return 0, fmt.Errorf("fio: job failed or read nothing")
	}
	return res.Jobs[0].Read.IOPS, nil
}

func preadLoop(n int) func(ctx context.Context, env Env) (float64, error) {
	return func(ctx context.Context, env Env) (float64, error) {
		f, err := os.Open(filepath.Join(env.Root, env.Data.Big))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		rng := rand.New(seeded("pread"))
		blocks := uint64(env.Data.Spec.BigSize / 4096)
		buf := make([]byte, 4096)
		start := time.Now()
		for i := 0; i < n; i++ {
			if _, err := f.ReadAt(buf, int64(rng.Uint64N(blocks))*4096); err != nil {
				return 0, err
			}
		}
		return float64(n) / time.Since(start).Seconds(), nil
	}
}

// toolRun runs a command with its output to /dev/null, {tree} standing for
// the small-file tree in the mount, and returns its wall time in seconds.
func toolRun(name string, args ...string) func(ctx context.Context, env Env) (float64, error) {
	return func(ctx context.Context, env Env) (float64, error) {
		full := make([]string, len(args))
		for i, a := range args {
			full[i] = strings.ReplaceAll(a, "{tree}", filepath.Join(env.Root, env.Data.Tree))
		}
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return 0, err
		}
		defer devnull.Close()
		cmd := exec.CommandContext(ctx, name, full...)
		cmd.Stdout = devnull
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
		}
		return time.Since(start).Seconds(), nil
	}
}

func readTree(ctx context.Context, env Env) (float64, error) {
	start := time.Now()
	files := 0
	err := filepath.WalkDir(filepath.Join(env.Root, env.Data.Tree), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files++
			_, err = os.ReadFile(p)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if want := env.Data.Spec.SmallFiles - env.Data.Spec.Changed; files != want {
		return 0, fmt.Errorf("read %d small files, want %d", files, want)
	}
	return time.Since(start).Seconds(), nil
}

func appendByte(ctx context.Context, env Env) (float64, error) {
	start := time.Now()
	f, err := os.OpenFile(filepath.Join(env.Root, env.Data.Big), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, err
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return since(start, "ms"), nil
}

func truncateBig(ctx context.Context, env Env) error {
	return os.Truncate(filepath.Join(env.Root, env.Data.Big), env.Data.Spec.BigSize)
}

func chmodBig(ctx context.Context, env Env) (float64, error) {
	start := time.Now()
	if err := os.Chmod(filepath.Join(env.Root, env.Data.Big), 0o600); err != nil {
		return 0, err
	}
	return since(start, "ms"), nil
}

func chmodBigBack(ctx context.Context, env Env) error {
	return os.Chmod(filepath.Join(env.Root, env.Data.Big), 0o644)
}

func touchSmall(ctx context.Context, env Env) (float64, error) {
	now := time.Now()
	start := time.Now()
	if err := os.Chtimes(filepath.Join(env.Root, env.Data.SmallFile), now, now); err != nil {
		return 0, err
	}
	return since(start, "ms"), nil
}

// scratchDir is the directory the write workloads create inside the mount.
func scratchDir(env Env) string { return filepath.Join(env.Root, "bench-scratch") }

func mkScratchDir(ctx context.Context, env Env) error { return os.Mkdir(scratchDir(env), 0o755) }
func rmScratchDir(ctx context.Context, env Env) error { return os.RemoveAll(scratchDir(env)) }

var smallContent = bytes.Repeat([]byte("fusebox\n"), 64)

func createFiles(ctx context.Context, env Env) (float64, error) {
	dir := scratchDir(env)
	start := time.Now()
	for i := 0; i < env.Data.Spec.Creates; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), smallContent, 0o644); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds(), nil
}

func setupDelete(ctx context.Context, env Env) error {
	if err := mkScratchDir(ctx, env); err != nil {
		return err
	}
	_, err := createFiles(ctx, env)
	return err
}

func deleteFiles(ctx context.Context, env Env) (float64, error) {
	dir := scratchDir(env)
	start := time.Now()
	for i := 0; i < env.Data.Spec.Creates; i++ {
		if err := os.Remove(filepath.Join(dir, fmt.Sprintf("f%05d", i))); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds(), nil
}

func untar(ctx context.Context, env Env) (float64, error) {
	cmd := exec.CommandContext(ctx, "tar", "-xf", env.Data.SourceTar, "-C", scratchDir(env))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("tar: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return time.Since(start).Seconds(), nil
}
