package bench

import (
	"errors"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	if d := (KernelOverlay{}).Describe(); !strings.HasPrefix(d, "mount -t overlay") {
		t.Errorf("kernel overlayfs: %q", d)
	}
	if d := (&FuseProgram{Label: "x"}).Describe(); d != "" {
		t.Errorf("a missing program describes itself as %q", d)
	}
	p := &FuseProgram{Label: FuseOverlayfsName, Path: "/usr/bin/fuse-overlayfs"}
	if d := p.Describe(); !strings.Contains(d, "fuse-overlayfs: version") {
		t.Skipf("fuse-overlayfs gives no version here: %q", d)
	}
}

// TestFuseboxHas asks the real fusebox binary (from `make build`) about its
// commands: bench exists on every branch that has this package.
func TestFuseboxHas(t *testing.T) {
	exe := builtProgram("fusebox")
	if exe == "" {
		t.Skip("no fusebox binary: run `make build`")
	}
	cli := Fusebox{Path: exe}
	if err := cli.Has(t.Context(), "bench"); err != nil {
		t.Errorf("fusebox has no bench: %v", err)
	}
	if err := cli.Has(t.Context(), "bench", "no-such-verb"); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "no-such-verb") {
		t.Errorf("unknown verb: %v, want ErrMissing naming it", err)
	}
	if err := (Fusebox{}).Has(t.Context(), "run"); !errors.Is(err, ErrMissing) {
		t.Errorf("no binary: %v, want ErrMissing", err)
	}
}
