package bench

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{nil, 0},
	}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSpeedupAndRatios(t *testing.T) {
	rep := &Report{Figures: []Figure{
		{Workload: "w", Backend: KernelOverlayName, Better: LowerIsBetter, Runs: []float64{2}},
		{Workload: "w", Backend: FuseOverlayfsName, Better: LowerIsBetter, Runs: []float64{8}},
		{Workload: "w", Backend: "x", Better: LowerIsBetter, Runs: []float64{4}},
		{Workload: "r", Backend: KernelOverlayName, Better: HigherIsBetter, Runs: []float64{100}},
		{Workload: "r", Backend: "x", Better: HigherIsBetter, Runs: []float64{90}},
		{Workload: "r", Backend: "y", Missing: "missing: not built"},
	}}
	for i := range rep.Figures {
		rep.Figures[i].summarize()
	}
	rep.computeRatios()
	tests := []struct {
		i          int
		vsK, vsFOV float64 // 0: no ratio
	}{
		{0, 1, 4}, {1, 0.25, 1}, {2, 0.5, 2}, {3, 1, 0}, {4, 0.9, 0}, {5, 0, 0},
	}
	for _, tc := range tests {
		f := rep.Figures[tc.i]
		check := func(name string, p *float64, want float64) {
			switch {
			case want == 0 && p != nil:
				t.Errorf("%s/%s %s = %v, want none", f.Workload, f.Backend, name, *p)
			case want != 0 && (p == nil || *p != want):
				t.Errorf("%s/%s %s = %v, want %v", f.Workload, f.Backend, name, p, want)
			}
		}
		check("vs kernel", f.VsKernel, tc.vsK)
		check("vs fuse-overlayfs", f.VsFuseOverlayfs, tc.vsFOV)
	}
}

func TestCompare(t *testing.T) {
	mk := func(v float64) *Report {
		r := &Report{Schema: SchemaVersion, Figures: []Figure{
			{Workload: "read", Backend: "b", Unit: "MiB/s", Better: HigherIsBetter, Runs: []float64{v}},
			{Workload: "find", Backend: "b", Unit: "s", Better: LowerIsBetter, Runs: []float64{v}},
		}}
		for i := range r.Figures {
			r.Figures[i].summarize()
		}
		return r
	}
	var out bytes.Buffer
	if err := Compare(&out, mk(100), mk(110)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| read | b | 100.0 | 110.0 | MiB/s | +10.0% | better |", "| find | b | 100.0 | 110.0 | s | +10.0% | worse |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("compare lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReadReportRejects(t *testing.T) {
	tests := []struct {
		name, in string
		sentinel error
	}{
		{"other schema", `{"schema": 99}`, ErrSchema},
		{"not json", `fio says hello`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadReport(strings.NewReader(tc.in))
			if err == nil || (tc.sentinel != nil && !errors.Is(err, tc.sentinel)) {
				t.Fatalf("got %v, want an error (%v)", err, tc.sentinel)
			}
		})
	}
}

func TestParseFioIOPS(t *testing.T) {
	tests := []struct {
		name, out string
		want      float64
		ok        bool
	}{
		{"plain", `{"jobs":[{"error":0,"read":{"iops":1234.5}}]}`, 1234.5, true},
		{"note before json", "note: both iodepth >= 1 and synchronous I/O engine\n" + `{"jobs":[{"read":{"iops":7}}]}`, 7, true},
		{"job error", `{"jobs":[{"error":5,"read":{"iops":0}}]}`, 0, false},
		{"no jobs", `{"jobs":[]}`, 0, false},
		{"garbage", `fio: failed`, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFioIOPS([]byte(tc.out))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("got %v, %v; want %v, ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestCount(t *testing.T) {
	for in, want := range map[int]string{7: "7", 1000: "1,000", 20000: "20,000", 100000: "100,000", 1234567: "1,234,567"} {
		if got := count(in); got != want {
			t.Errorf("count(%d) = %q, want %q", in, got, want)
		}
	}
}
