package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fusebox/fusebox/bench"
)

// TestBenchFromReport renders a saved report through the command, which
// exercises its flags and output files without measuring anything. It runs
// the built binary: `fusebox bench` hands over to fuseboxd with exec.
func TestBenchFromReport(t *testing.T) {
	dir := t.TempDir()
	rep := &bench.Report{Schema: bench.SchemaVersion, Date: time.Now(), Runs: 1, Figures: []bench.Figure{
		{Workload: "mount", Backend: bench.KernelOverlayName, Unit: "ms", Better: bench.LowerIsBetter,
			Runs: []float64{10}, Median: 10, Min: 10, Max: 10},
	}}
	saved := filepath.Join(dir, "old.json")
	f, err := os.Create(saved)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"render", []string{"bench", "--from", saved, "--out", filepath.Join(dir, "out")}, 0},
		{"render and compare", []string{"bench", "--from", saved, "--compare", saved, "--out", filepath.Join(dir, "out2")}, 0},
		{"missing compare file", []string{"bench", "--from", saved, "--compare", filepath.Join(dir, "nope.json")}, 1},
		{"no arguments allowed", []string{"bench", "extra"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(fuseboxBin, tc.args...)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, out)
			}
		})
	}
	for _, name := range []string{"bench.md", "bench.json", "bench.png"} {
		if fi, err := os.Stat(filepath.Join(dir, "out", name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", name, err)
		}
	}
}
