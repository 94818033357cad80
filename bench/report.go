package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// SchemaVersion is the version of the JSON report; readers refuse others.
const SchemaVersion = 1

// Report is the outcome of one harness run, written as JSON and markdown.
type Report struct {
	Schema  int       `json:"schema"`
	Date    time.Time `json:"date"`
	Commit  string    `json:"commit"` // git commit of the working tree, "+dirty" when modified
	Command string    `json:"command"`
	Quick   bool      `json:"quick"`
	Runs    int       `json:"runs"`
	// Seconds is how long the run took, data set check, daemon and
	// set-ups included (0 in reports from before it was recorded).
	Seconds  float64       `json:"seconds,omitempty"`
	Machine  Machine       `json:"machine"`
	Dataset  DatasetInfo   `json:"dataset"`
	Backends []BackendInfo `json:"backends"`
	Figures  []Figure      `json:"figures"`
}

// Machine describes where the figures were taken.
type Machine struct {
	Kernel      string `json:"kernel"`
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	MemoryBytes uint64 `json:"memory_bytes"`
	GoVersion   string `json:"go_version"`
}

// DatasetInfo names the data set the figures were taken on.
type DatasetInfo struct {
	ID   string `json:"id"`
	Spec Spec   `json:"spec"`
}

// BackendInfo says what a backend is, or why it is missing.
type BackendInfo struct {
	Name    string `json:"name"`
	Detail  string `json:"detail,omitempty"`
	Missing string `json:"missing,omitempty"`
}

// Figure is one workload on one backend: the median, min and max of the
// runs, and its standing against the two anchors.
type Figure struct {
	Workload string    `json:"workload"`
	Backend  string    `json:"backend"`
	Unit     string    `json:"unit"`
	Better   Better    `json:"better"`
	Note     string    `json:"note,omitempty"`
	Runs     []float64 `json:"runs,omitempty"`
	Median   float64   `json:"median,omitempty"`
	Min      float64   `json:"min,omitempty"`
	Max      float64   `json:"max,omitempty"`
	// VsKernel and VsFuseOverlayfs are speed ratios against the anchors on
	// the same workload: above 1 is better than the anchor, whichever way
	// the unit goes (anchor time / time, or throughput / anchor throughput).
	VsKernel        *float64 `json:"vs_kernel_overlayfs,omitempty"`
	VsFuseOverlayfs *float64 `json:"vs_fuse_overlayfs,omitempty"`
	Missing         string   `json:"missing,omitempty"`
	Error           string   `json:"error,omitempty"`
}

// OK reports whether the figure has a value.
func (f *Figure) OK() bool { return f.Missing == "" && f.Error == "" && len(f.Runs) > 0 }

func (f *Figure) summarize() {
	if len(f.Runs) == 0 {
		return
	}
	f.Median, f.Min, f.Max = median(f.Runs), f.Runs[0], f.Runs[0]
	for _, v := range f.Runs {
		f.Min, f.Max = min(f.Min, v), max(f.Max, v)
	}
}

// speedup is how much better value is than anchor, > 1 meaning better.
func speedup(better Better, value, anchor float64) float64 {
	if better == HigherIsBetter {
		return value / anchor
	}
	return anchor / value
}

func (r *Report) computeRatios() {
	anchors := map[[2]string]float64{}
	for _, f := range r.Figures {
		if f.OK() && f.Median > 0 {
			anchors[[2]string{f.Workload, f.Backend}] = f.Median
		}
	}
	for i := range r.Figures {
		f := &r.Figures[i]
		if !f.OK() || f.Median <= 0 {
			continue
		}
		if a, ok := anchors[[2]string{f.Workload, KernelOverlayName}]; ok {
			v := speedup(f.Better, f.Median, a)
			f.VsKernel = &v
		}
		if a, ok := anchors[[2]string{f.Workload, FuseOverlayfsName}]; ok {
			v := speedup(f.Better, f.Median, a)
			f.VsFuseOverlayfs = &v
		}
	}
}

func newReport(cfg Config, ds *Dataset) *Report {
	return &Report{
		Schema:  SchemaVersion,
		Date:    time.Now().UTC().Truncate(time.Second),
		Commit:  gitCommit(),
		Command: strings.Join(os.Args, " "),
		Quick:   cfg.Quick,
		Runs:    cfg.Runs,
		Machine: machineFacts(),
		Dataset: DatasetInfo{ID: ds.ID, Spec: ds.Spec},
	}
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "+dirty"
	}
	return c
}

func machineFacts() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		m.MemoryBytes = uint64(si.Totalram) * uint64(si.Unit)
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return m
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ErrSchema is returned for a JSON report of another schema version.
var ErrSchema = fmt.Errorf("unsupported bench report schema")

// ReadReport reads a JSON report written by WriteJSON.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("read bench report: %w", err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("read bench report: schema %d, want %d: %w", r.Schema, SchemaVersion, ErrSchema)
	}
	return &r, nil
}

// ReadReportFile reads a JSON report from a file.
func ReadReportFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadReport(f)
}

// WriteMarkdown writes the report as a markdown section: when, where and how,
// then one table row per figure.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	fmt.Fprintf(bw, "Benchmark of %s, commit %s, %s run, median of up to %d runs (fewer where a figure used its time budget: see the runs column).\n\n",
		r.Date.Format("2006-01-02 15:04 MST"), orNone(r.Commit), mode, r.Runs)
	fmt.Fprintf(bw, "Machine: Linux %s, %d CPUs (%s), %.1f GiB memory. Command: `%s`",
		r.Machine.Kernel, r.Machine.CPUs, orNone(r.Machine.CPUModel), float64(r.Machine.MemoryBytes)/(1<<30), r.Command)
	if r.Seconds > 0 {
		fmt.Fprintf(bw, ", which took %s", (time.Duration(r.Seconds) * time.Second).String())
	}
	fmt.Fprint(bw, ".\n\n")
	s := r.Dataset.Spec
	fmt.Fprintf(bw, "Data set %s: busybox base; %s files of 1–8 KiB in %d directories; %s and %s incompressible files; "+
		"%d files rewritten and %d deleted (whiteouts) by a change layer; a small top layer. Caches dropped before every cold run, for every backend.\n\n",
		r.Dataset.ID, count(s.SmallFiles), s.SmallDirs, sizeText(s.BigSize), sizeText(s.MidSize), s.Changed, s.Changed)
	fmt.Fprintln(bw, "Ratios are speed against the anchor on the same workload: above 1 is better than the anchor.")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| workload | backend | median | min | max | unit | vs kernel overlayfs | vs fuse-overlayfs | runs |")
	fmt.Fprintln(bw, "|---|---|---:|---:|---:|---|---:|---:|---:|")
	for _, f := range r.Figures {
		switch {
		case f.Missing != "":
			fmt.Fprintf(bw, "| %s | %s | %s | | | %s | | | |\n", mdEscape(f.Workload), mdEscape(f.Backend), mdEscape(f.Missing), f.Unit)
		case f.Error != "":
			fmt.Fprintf(bw, "| %s | %s | error: %s | | | %s | | | |\n", mdEscape(f.Workload), mdEscape(f.Backend), mdEscape(f.Error), f.Unit)
		default:
			fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", mdEscape(f.Workload), mdEscape(f.Backend),
				num(f.Median), num(f.Min), num(f.Max), f.Unit, ratio(f.VsKernel), ratio(f.VsFuseOverlayfs), len(f.Runs))
		}
	}
	// A workload's note is printed once; per backend only where they differ.
	notes := map[string][]Figure{}
	var order []string
	for _, f := range r.Figures {
		if f.Note == "" {
			continue
		}
		if _, ok := notes[f.Workload]; !ok {
			order = append(order, f.Workload)
		}
		notes[f.Workload] = append(notes[f.Workload], f)
	}
	if len(order) > 0 {
		fmt.Fprintln(bw, "\nHow the figures are taken:")
		for _, wl := range order {
			fs := notes[wl]
			same := true
			for _, f := range fs {
				same = same && f.Note == fs[0].Note
			}
			if same {
				fmt.Fprintf(bw, "- %s: %s\n", wl, fs[0].Note)
				continue
			}
			for _, f := range fs {
				fmt.Fprintf(bw, "- %s, %s: %s\n", wl, f.Backend, f.Note)
			}
		}
	}
	fmt.Fprint(bw, "\nWhere fusebox stands against the targets of issues 3, 4 and 5")
	if r.Quick {
		fmt.Fprint(bw, " (a quick run: the data set is smaller than the targets assume)")
	}
	fmt.Fprint(bw, ":\n\n")
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := r.WriteTargets(bw); err != nil {
		return err
	}
	var backs []string
	for _, b := range r.Backends {
		if b.Detail != "" {
			backs = append(backs, fmt.Sprintf("- %s: %s", b.Name, b.Detail))
		}
	}
	if len(backs) > 0 {
		fmt.Fprintln(bw, "\nBackends:")
		for _, b := range backs {
			fmt.Fprintln(bw, b)
		}
	}
	return bw.Flush()
}

func ratio(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', 2, 64) + "x"
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// Compare writes, for every figure present in both reports, the change of
// its median from old to new, and whether that is better or worse.
func Compare(w io.Writer, old, new *Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Change from %s (%s) to %s (%s):\n\n", old.Date.Format(time.DateTime), orNone(old.Commit), new.Date.Format(time.DateTime), orNone(new.Commit))
	if old.Quick != new.Quick || old.Dataset.ID != new.Dataset.ID {
		fmt.Fprintln(bw, "Warning: the two runs used different data sets; the figures are not comparable.")
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw, "| workload | backend | old | new | unit | change | |")
	fmt.Fprintln(bw, "|---|---|---:|---:|---|---:|---|")
	olds := map[[2]string]Figure{}
	for _, f := range old.Figures {
		olds[[2]string{f.Workload, f.Backend}] = f
	}
	for _, f := range new.Figures {
		o, ok := olds[[2]string{f.Workload, f.Backend}]
		if !ok {
			continue
		}
		switch {
		case !o.OK() && !f.OK():
			continue
		case !o.OK():
			fmt.Fprintf(bw, "| %s | %s | — | %s | %s | new | |\n", mdEscape(f.Workload), mdEscape(f.Backend), num(f.Median), f.Unit)
		case !f.OK():
			fmt.Fprintf(bw, "| %s | %s | %s | — | %s | gone | |\n", mdEscape(f.Workload), mdEscape(f.Backend), num(o.Median), o.Unit)
		default:
			change := (f.Median - o.Median) / o.Median * 100
			verdict := "better"
			if s := speedup(f.Better, f.Median, o.Median); s < 1 {
				verdict = "worse"
			} else if s == 1 {
				verdict = "same"
			}
			fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %+.1f%% | %s |\n", mdEscape(f.Workload), mdEscape(f.Backend),
				num(o.Median), num(f.Median), f.Unit, change, verdict)
		}
	}
	return bw.Flush()
}
