package testenv

import (
	"os"
	"testing"
)

// TestChecksMatchTheMachine runs each check in a subtest and compares
// whether it skipped with what the machine has.
func TestChecksMatchTheMachine(t *testing.T) {
	_, fuseErr := os.Stat("/dev/fuse")
	root := os.Geteuid() == 0
	tests := []struct {
		name  string
		check func(testing.TB)
		ok    bool
	}{
		{"root", func(t testing.TB) { RequireRoot(t, "a test") }, root},
		{"fuse", func(t testing.TB) { RequireFUSE(t, "a test") }, root && fuseErr == nil},
		{"present tool", func(t testing.TB) { RequireTool(t, "sh", "dash") }, true},
		{"missing tool", func(t testing.TB) { RequireTool(t, "no-such-tool-here", "none") }, false},
	}
	for _, tt := range tests {
		ran := false
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t)
			ran = true
		})
		if ran != tt.ok {
			t.Errorf("%s: ran=%v, want %v", tt.name, ran, tt.ok)
		}
	}
}
