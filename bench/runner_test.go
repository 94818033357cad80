package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunCase(t *testing.T) {
	sleepy := func(ctx context.Context, i int) (float64, error) {
		time.Sleep(5 * time.Millisecond)
		return float64(i + 1), nil
	}
	var tornDown bool
	tests := []struct {
		name     string
		c        Case
		cfg      Config
		runs     int
		missing  string // prefix
		errorHas string
	}{
		{"all runs", Case{Run: sleepy}, Config{Runs: 5}, 5, "", ""},
		{"budget stops at min runs", Case{Run: sleepy}, Config{Runs: 10, MinRuns: 2, CaseBudget: time.Millisecond}, 2, "", ""},
		{"missing backend", Case{Run: sleepy, Available: func(context.Context) error { return missingf("not built") }},
			Config{Runs: 3}, 0, "missing: not built", ""},
		{"other availability error is missing too", Case{Run: sleepy, Available: func(context.Context) error { return errors.New("no overlay") }},
			Config{Runs: 3}, 0, "missing: no overlay", ""},
		{"setup says missing", Case{Run: sleepy, Setup: func(context.Context) error { return missingf("no daemon") }},
			Config{Runs: 3}, 0, "missing: no daemon", ""},
		{"run error", Case{Run: func(ctx context.Context, i int) (float64, error) {
			if i == 1 {
				return 0, errors.New("boom")
			}
			return 1, nil
		}}, Config{Runs: 3}, 0, "", "boom"},
		{"teardown runs and reports", Case{Run: sleepy, Teardown: func(context.Context) error { tornDown = true; return errors.New("stuck") }},
			Config{Runs: 1}, 1, "", "teardown: stuck"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := runCase(context.Background(), tc.c, tc.cfg)
			if len(f.Runs) != tc.runs {
				t.Errorf("%d runs, want %d", len(f.Runs), tc.runs)
			}
			if !strings.HasPrefix(f.Missing, tc.missing) || (tc.missing == "" && f.Missing != "") {
				t.Errorf("missing %q, want %q", f.Missing, tc.missing)
			}
			if !strings.Contains(f.Error, tc.errorHas) || (tc.errorHas == "" && f.Error != "") {
				t.Errorf("error %q, want it to contain %q", f.Error, tc.errorHas)
			}
		})
	}
	if !tornDown {
		t.Error("teardown was not called")
	}
}
