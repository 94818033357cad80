package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestTargets(t *testing.T) {
	fig := func(w, b, unit string, better Better, v float64) Figure {
		f := Figure{Workload: w, Backend: b, Unit: unit, Better: better, Runs: []float64{v}}
		f.summarize()
		return f
	}
	rep := &Report{Figures: []Figure{
		fig("sequential read, big file, cold", KernelOverlayName, "MiB/s", HigherIsBetter, 1000),
		fig("sequential read, big file, cold", "fusebox-overlay", "MiB/s", HigherIsBetter, 950),
		{Workload: "sequential read, big file, cold", Backend: "fusebox image mount", Missing: "missing: no mount yet"},
		fig("copy-up: chmod big file", "fusebox-overlay", "ms", LowerIsBetter, 12),
		fig("copy-up: chmod big file", "fusebox image mount", "ms", LowerIsBetter, 3),
		fig(startName, KernelOverlayName, "ms", LowerIsBetter, 100),
		fig(startName, "fusebox", "ms", LowerIsBetter, 140),
		fig("diff, 10 changes, 1,000-file image", "fusebox", "ms", LowerIsBetter, 10),
		fig("diff, 10 changes, 100,000-file image", "fusebox", "ms", LowerIsBetter, 25),
	}}
	rep.computeRatios()
	var out bytes.Buffer
	if err := rep.WriteTargets(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 1 GiB sequential read, cold, ≥ 90% of kernel overlayfs | fusebox-overlay | met | 950.0 MiB/s, 0.95x |",
		"| 1 GiB sequential read, cold, ≥ 90% of kernel overlayfs | fusebox image mount | missing | missing: no mount yet |",
		"| chmod of the 1 GiB lower file < 10 ms | fusebox-overlay | not met | 12.00 ms |",
		"| chmod of the 1 GiB lower file < 10 ms | fusebox image mount | met | 3 ms |",
		"| fusebox | met | 140.0 ms, 1.40x runc's time |",
		"| fusebox | not met | 10.00 ms and 25.00 ms, 2.50x |",
		"| commit of 10 MB of changes on a 1 GiB image < 1 s | fusebox | missing | not measured in this run |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("targets lack %q:\n%s", want, out.String())
		}
	}
}
