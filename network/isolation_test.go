package network

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func filterRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "filter").Output()
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		// Daemons of other packages' tests come and go meanwhile.
		if !strings.HasPrefix(l, "#") && !daemonLine.MatchString(l) && !hashedChain.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestNetworkIsolation: containers on two user networks, and one on the
// default bridge, cannot reach each other through the host, while a
// container connected to both networks reaches both.
func TestNetworkIsolation(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, _ := newTestManager(t)
	base := strconv.Itoa(os.Getpid() % 200)
	before := filterRules(t)
	netA, err := m.CreateNetwork(ctx, CreateOptions{Name: "isoa", Subnet: mustPrefix(t, "10.218."+base+".0/24")})
	if err != nil {
		t.Fatal(err)
	}
	netB, err := m.CreateNetwork(ctx, CreateOptions{Name: "isob", Subnet: mustPrefix(t, "10.219."+base+".0/24")})
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Setup(ctx, Request{ID: "isoa1", Name: "a", Mode: Mode{Kind: KindBridge, Network: "isoa"}})
	if err != nil {
		t.Fatal(err)
	}
	startHTTPD(t, a.NetnsPath, "on a\n")
	aAddr, _ := a.Primary()
	url := "http://" + aAddr.Address.Addr().String() + "/"
	b, err := m.Setup(ctx, Request{ID: "isob1", Name: "b", Mode: Mode{Kind: KindBridge, Network: "isob"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.Setup(ctx, Request{ID: "isod1", Name: "d", Mode: bridgeMode})
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range []*Sandbox{b, d} {
		if got, err := wgetIn(sb.NetnsPath, url); err == nil {
			t.Errorf("%s on %s reached a on isoa: %q", sb.Name, sb.Mode, got)
		}
	}
	if _, err := m.Connect(ctx, "isob1", "isoa", EndpointOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := wgetIn(b.NetnsPath, url); err != nil || got != "on a\n" {
		t.Errorf("b connected to isoa: %q, %v", got, err)
	}
	for _, id := range []string{"isoa1", "isob1", "isod1"} {
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []Network{netA, netB} {
		if err := m.RemoveNetwork(ctx, n.Name); err != nil {
			t.Fatal(err)
		}
	}
	if after := filterRules(t); after != before {
		t.Fatalf("filter rules changed by create/rm of two networks:\nbefore\n%s\nafter\n%s", before, after)
	}
}
