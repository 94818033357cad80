package launcher

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogStreamLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	lf, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := &logStream{log: lf, stream: "stdout"}
	errs := &logStream{log: lf, stream: "stderr"}
	long := strings.Repeat("x", maxLogLine+10)
	for _, w := range []struct {
		s *logStream
		p string
	}{{out, "a\nb"}, {errs, "e1\n"}, {out, "c\n\n"}, {out, long}, {out, "\n"}, {out, "tail"}} {
		if _, err := w.s.Write([]byte(w.p)); err != nil {
			t.Fatal(err)
		}
	}
	out.flush()
	errs.flush()
	if err := lf.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || len(m) != 3 {
			t.Fatalf("record %q: %v", line, err)
		}
		got = append(got, m["stream"].(string)[:3]+":"+m["log"].(string))
	}
	want := []string{"std:a\n", "std:e1\n", "std:bc\n", "std:\n", "std:" + long[:maxLogLine], "std:" + long[maxLogLine:] + "\n", "std:tail"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		for i := range got {
			if len(got[i]) > 40 {
				got[i] = fmt.Sprintf("%s... (%d bytes)", got[i][:20], len(got[i]))
			}
		}
		t.Fatalf("got %q", got)
	}
	// A log that isn't there yet reads as empty.
	n := 0
	if err := ReadLogs(context.Background(), filepath.Join(t.TempDir(), "none"), LogOptions{Tail: -1}, func(LogEntry) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("missing log: %d entries, %v", n, err)
	}
	// A corrupt record is an error, not a silent skip.
	if err := os.WriteFile(path, []byte("{not json}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReadLogs(context.Background(), path, LogOptions{Tail: -1}, func(LogEntry) error { return nil }); err == nil || !strings.Contains(err.Error(), "parse container log") {
		t.Fatalf("corrupt log: %v", err)
	}
}
