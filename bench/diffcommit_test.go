package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiffCommitTargets(t *testing.T) {
	fig := func(w, b, unit string, v float64) Figure {
		f := Figure{Workload: w, Backend: b, Unit: unit, Better: LowerIsBetter, Runs: []float64{v}}
		f.summarize()
		return f
	}
	for _, tc := range []struct {
		name  string
		figs  []Figure
		wants []string
	}{
		{"met", []Figure{
			fig("diff, 10 changes, 1,000-file image", "fusebox", "ms", 10),
			fig("diff, 10 changes, 100,000-file image", "fusebox", "ms", 12),
			fig("diff, 10 changes, 1,000-file image, running container", "fusebox", "ms", 8),
			fig("diff, 10 changes, 100,000-file image, running container", "fusebox", "ms", 9),
			fig("commit of a 1.0 GiB new file: extra disk", "fusebox", "bytes", 40960),
		}, []string{
			"| fusebox | met | 10.00 ms and 12.00 ms, 1.20x |",
			"| fusebox, running container | met | 8 ms and 9 ms, 1.12x |",
			"| commit of a 1 GiB new file costs no second 1 GiB of disk | fusebox | met |",
		}},
		{"not met", []Figure{
			fig("diff, 10 changes, 1,000-file image", "fusebox", "ms", 10),
			fig("diff, 10 changes, 100,000-file image", "fusebox", "ms", 29),
			fig("commit of a 1.0 GiB new file: extra disk", "fusebox", "bytes", 1<<30),
		}, []string{
			"| fusebox | not met | 10.00 ms and 29.00 ms, 2.90x |",
			"| fusebox, running container | missing |",
			"| commit of a 1 GiB new file costs no second 1 GiB of disk | fusebox | not met |",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &Report{Figures: tc.figs}
			rep.Dataset.Spec.BigSize = 1 << 30
			rep.computeRatios()
			var out bytes.Buffer
			if err := rep.WriteTargets(&out); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.wants {
				if !strings.Contains(out.String(), want) {
					t.Errorf("targets lack %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// TestDiskUsageCountsInodesOnce: a second name of a file costs nothing.
func TestDiskUsageCountsInodesOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	one, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "sub", "b")); err != nil {
		t.Fatal(err)
	}
	two, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if one < 1<<20 || two-one >= 1<<20 {
		t.Errorf("du of one file %d, with a second name %d", one, two)
	}
}
