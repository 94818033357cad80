package bench

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// A Target is one of the figures the layerfs, containers and diff/commit
// issues (3, 4, 5) require fusebox to reach, checked against a report.
type Target struct {
	Issue int
	Text  string // the requirement, as the issue states it
	// Check judges the target on a report, one verdict per fusebox
	// backend it applies to; a missing figure gives a "missing" verdict.
	Check func(r *Report) []Verdict
}

// Verdict is a target judged for one backend.
type Verdict struct {
	Backend string
	Status  string // "met", "not met" or "missing"
	Detail  string
}

// fuseboxBackends are the backends whose figures the targets judge.
var fuseboxBackends = []string{"fusebox-overlay", "fusebox image mount"}

func (r *Report) figure(workload, backend string) *Figure {
	for i := range r.Figures {
		if r.Figures[i].Workload == workload && r.Figures[i].Backend == backend {
			return &r.Figures[i]
		}
	}
	return nil
}

// figureLike finds a figure whose workload starts with prefix (the names
// carry data set sizes).
func (r *Report) figureLike(prefix, backend string) *Figure {
	for i := range r.Figures {
		if strings.HasPrefix(r.Figures[i].Workload, prefix) && r.Figures[i].Backend == backend {
			return &r.Figures[i]
		}
	}
	return nil
}

func missingVerdict(backend string, f *Figure) Verdict {
	switch {
	case f == nil:
		return Verdict{backend, "missing", "not measured in this run"}
	case f.Missing != "":
		return Verdict{backend, "missing", f.Missing}
	default:
		return Verdict{backend, "missing", "error: " + f.Error}
	}
}

// ratioTarget judges a speed ratio against an anchor, per fusebox backend.
func ratioTarget(prefix string, vsKernel bool, atLeast float64) func(r *Report) []Verdict {
	return func(r *Report) []Verdict {
		var out []Verdict
		for _, b := range fuseboxBackends {
			f := r.figureLike(prefix, b)
			p := (*float64)(nil)
			if f != nil {
				p = f.VsFuseOverlayfs
				if vsKernel {
					p = f.VsKernel
				}
			}
			if f == nil || !f.OK() || p == nil {
				out = append(out, missingVerdict(b, f))
				continue
			}
			st := "met"
			if *p < atLeast {
				st = "not met"
			}
			out = append(out, Verdict{b, st, fmt.Sprintf("%s %s, %.2fx", num(f.Median), f.Unit, *p)})
		}
		return out
	}
}

// absTarget judges a median against a bound in the figure's unit.
func absTarget(prefix string, backends []string, below float64) func(r *Report) []Verdict {
	return func(r *Report) []Verdict {
		var out []Verdict
		for _, b := range backends {
			f := r.figureLike(prefix, b)
			if f == nil || !f.OK() {
				out = append(out, missingVerdict(b, f))
				continue
			}
			st := "met"
			if f.Median >= below {
				st = "not met"
			}
			out = append(out, Verdict{b, st, fmt.Sprintf("%s %s", num(f.Median), f.Unit)})
		}
		return out
	}
}

// Targets lists the figures issues 3, 4 and 5 set, in their order.
func Targets() []Target {
	return []Target{
		{3, "1 GiB sequential read, cold, ≥ 90% of kernel overlayfs", ratioTarget("sequential read, big file, cold", true, 0.9)},
		{3, "1 GiB sequential read, warm, ≥ 90% of kernel overlayfs", ratioTarget("sequential read, big file, warm", true, 0.9)},
		{3, "find + stat of the tree, cold, ≥ 2x faster than fuse-overlayfs", ratioTarget("find + stat, tree, cold", false, 2)},
		{3, "chmod of the 1 GiB lower file < 10 ms", absTarget("copy-up: chmod big file", fuseboxBackends, 10)},
		{3, "append of 1 byte to the 1 GiB lower file no slower than kernel overlayfs", ratioTarget("copy-up: append 1 byte", true, 1)},
		{3, "creating the small files ≥ 2x faster than fuse-overlayfs", ratioTarget("create ", false, 2)},
		{4, "run --rm IMAGE true ≤ 1.5x runc run on kernel overlayfs", func(r *Report) []Verdict {
			f := r.figure(startName, "fusebox")
			if f == nil || !f.OK() || f.VsKernel == nil {
				return []Verdict{missingVerdict("fusebox", f)}
			}
			st := "met"
			if 1 / *f.VsKernel > 1.5 {
				st = "not met"
			}
			return []Verdict{{"fusebox", st, fmt.Sprintf("%s ms, %.2fx runc's time", num(f.Median), 1 / *f.VsKernel)}}
		}},
		{5, "diff with 10 changes: small and large image within 2x of each other", diffTarget},
		{5, "commit of 10 MB of changes on a 1 GiB image < 1 s", absTarget("commit 10 MiB", []string{"fusebox"}, 1000)},
		{5, "commit of a 1 GiB new file costs no second 1 GiB of disk", commitDiskTarget},
	}
}

// runningSuffix ends the workload names of the diff figures of a running
// container (fuseboxDiffRunning).
const runningSuffix = ", running container"

// diffTarget judges the diff figures of the small and the large image,
// for a stopped container (backend "fusebox") and a running one.
func diffTarget(r *Report) []Verdict {
	var out []Verdict
	for _, running := range []bool{false, true} {
		backend := "fusebox"
		if running {
			backend = "fusebox" + runningSuffix
		}
		var figs []*Figure
		for i := range r.Figures {
			f := &r.Figures[i]
			if strings.HasPrefix(f.Workload, "diff, 10 changes") && f.Backend == "fusebox" &&
				strings.HasSuffix(f.Workload, runningSuffix) == running {
				figs = append(figs, f)
			}
		}
		if len(figs) != 2 || !figs[0].OK() || !figs[1].OK() {
			var f *Figure
			if len(figs) > 0 {
				f = figs[0]
			}
			out = append(out, missingVerdict(backend, f))
			continue
		}
		ratio := figs[1].Median / figs[0].Median
		st := "met"
		if ratio > 2 || ratio < 0.5 {
			st = "not met"
		}
		out = append(out, Verdict{backend, st, fmt.Sprintf("%s ms and %s ms, %.2fx", num(figs[0].Median), num(figs[1].Median), ratio)})
	}
	return out
}

// commitDiskTarget: the extra disk of the commit of the big new file is
// met under a tenth of the file's size (metadata, not a second copy).
func commitDiskTarget(r *Report) []Verdict {
	f := r.figureLike("commit of a ", "fusebox")
	if f == nil || !f.OK() {
		return []Verdict{missingVerdict("fusebox", f)}
	}
	size := float64(r.Dataset.Spec.BigSize)
	st := "met"
	if size <= 0 || f.Median >= size/10 {
		st = "not met"
	}
	return []Verdict{{"fusebox", st, fmt.Sprintf("%s bytes for a %s file", num(f.Median), sizeText(r.Dataset.Spec.BigSize))}}
}

// WriteTargets writes, for every target of issues 3–5, whether this report
// shows it met, per fusebox backend.
func (r *Report) WriteTargets(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "| issue | target | backend | status | figure |")
	fmt.Fprintln(bw, "|---|---|---|---|---|")
	for _, t := range Targets() {
		for _, v := range t.Check(r) {
			fmt.Fprintf(bw, "| #%d | %s | %s | %s | %s |\n", t.Issue, mdEscape(t.Text), v.Backend, v.Status, mdEscape(v.Detail))
		}
	}
	return bw.Flush()
}
