package network

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rulesNaming lists the filter and nat tables' lines that name one of the
// bridges or subnets: what a network's create added and its removal must
// take away again. Only those are compared, because fusebox daemons of other
// packages' tests add and remove rules of their own networks meanwhile (go
// test runs packages in parallel).
func rulesNaming(t *testing.T, names ...string) []string {
	t.Helper()
	var lines []string
	for _, table := range []string{"filter", "nat"} {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if slices.ContainsFunc(names, func(n string) bool { return strings.Contains(l, n) }) {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

// TestNetworkIsolation: containers on two user networks, and one on the
// default bridge, cannot reach each other through the host, while a
// container connected to both networks reaches both.
func TestNetworkIsolation(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, _ := newTestManager(t)
	base := strconv.Itoa(os.Getpid() % 200)
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
	if left := rulesNaming(t, netA.Bridge, netB.Bridge, netA.Subnet.String(), netB.Subnet.String()); len(left) > 0 {
		t.Fatalf("rules of two removed networks are left:\n%s", strings.Join(left, "\n"))
	}
}
