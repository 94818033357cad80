package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEngineHandOver: `fusebox daemon` and `fusebox bench` are fuseboxd's,
// flags and help included; a fusebox with no fuseboxd beside it or on PATH
// says so in one line.
func TestEngineHandOver(t *testing.T) {
	for _, verb := range []string{"daemon", "bench"} {
		out, err := exec.Command(fuseboxBin, verb, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "fuseboxd "+verb) {
			t.Errorf("fusebox %s --help: %v\n%s", verb, err, out)
		}
	}
	if out, _ := exec.Command(fuseboxBin, "daemon", "--help").CombinedOutput(); !strings.Contains(string(out), "--registry-mirror") {
		t.Errorf("fusebox daemon --help lacks the daemon's flags:\n%s", out)
	}

	data, err := os.ReadFile(fuseboxBin)
	if err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(t.TempDir(), "fusebox")
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(alone, "daemon")
	cmd.Env = append(os.Environ(), "PATH=/nonexistent")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("fusebox daemon without fuseboxd: %v\n%s", err, out)
	}
	if msg := strings.TrimSpace(string(out)); strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "fuseboxd is not installed") {
		t.Errorf("error %q, want one line naming fuseboxd", msg)
	}
}
