package bench

import (
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
