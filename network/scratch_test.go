package network

import (
	"context"
	"os/exec"
	"testing"
)

func TestScratch(t *testing.T) {
	needRoot(t)
	inOwnNetns(t)
	m, _ := newTestManager(t)
	n, err := m.CreateNetwork(context.Background(), CreateOptions{Name: "leaknet", Subnet: mustPrefix(t, "10.216.3.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("iptables-save").CombinedOutput()
	t.Logf("%+v\n%s", n, out)
}
