package network

import (
	"net/netip"
	"strings"
	"testing"
)

// TestNetworkRules: every kind of network gets its rules (isolation above
// forwarding in FUSEBOX-FORWARD, masquerade unless internal), iptables
// lists them exactly as they were given (which lets ensureNetworkRules
// check them all with one listing per chain), ensuring twice adds nothing,
// and removal takes every one away. It runs in its own netns.
func TestNetworkRules(t *testing.T) {
	needRoot(t)
	inOwnNetns(t)
	nets := []Network{
		{Name: DefaultNetwork, Driver: "bridge", Bridge: "fbtdef", Subnet: netip.MustParsePrefix("10.1.0.0/24")},
		{Name: "user", Driver: "bridge", Bridge: "fb-000000000001", Subnet: netip.MustParsePrefix("10.1.1.0/24")},
		{Name: "internal", Driver: "bridge", Bridge: "fb-000000000002", Subnet: netip.MustParsePrefix("10.1.2.0/24"), Internal: true},
		{Name: HostNetwork, Driver: "host"},
	}
	wantCounts := map[string][2]int{ // filter, nat
		DefaultNetwork: {3, 1}, "user": {5, 1}, "internal": {3, 0}, HostNetwork: {0, 0},
	}
	for _, n := range nets {
		var got [2]int
		for _, r := range networkRules(n, "fbtdef") {
			if r.table == "nat" {
				got[1]++
			} else {
				got[0]++
			}
		}
		if got != wantCounts[n.Name] {
			t.Errorf("network %s: %v filter/nat rules, want %v", n.Name, got, wantCounts[n.Name])
		}
	}
	for range 2 {
		if err := ensureNetworkRules(nets, "fbtdef"); err != nil {
			t.Fatal(err)
		}
	}
	filter, ok := listChain("filter", forwardChain)
	if !ok {
		t.Fatalf("no chain %s", forwardChain)
	}
	nat, _ := listChain("nat", "POSTROUTING")
	for _, n := range nets {
		for _, r := range networkRules(n, "fbtdef") {
			if listed := map[string]map[string]bool{"filter": filter, "nat": nat}[r.table]; !listed[r.key()] {
				t.Errorf("rule %q not listed as given", r.args)
			}
		}
	}
	lines := ruleLines(t, "filter", "nat")
	if got, want := len(filter)+len(nat), 3+5+3+1+1; got != want {
		t.Errorf("%d rules after ensuring twice, want %d:\n%s", got, want, strings.Join(lines, "\n"))
	}
	// Order: no forwarding ACCEPT above an isolation rule, and the jump
	// to the chain first in FORWARD.
	seenForward := false
	for _, l := range lines {
		if !strings.Contains(l, "-A "+forwardChain+" ") {
			continue
		}
		if strings.Contains(l, forwardComment) {
			seenForward = true
		} else if seenForward {
			t.Errorf("isolation rule below a forwarding rule: %s\n%s", l, strings.Join(lines, "\n"))
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "filter -A FORWARD ") {
			if !strings.Contains(l, "-j "+forwardChain) {
				t.Errorf("first rule of FORWARD is %s", l)
			}
			break
		}
	}
	for _, n := range nets {
		if err := removeNetworkRules(n, "fbtdef"); err != nil {
			t.Fatal(err)
		}
	}
	filter, _ = listChain("filter", forwardChain)
	nat, _ = listChain("nat", "POSTROUTING")
	if len(filter)+len(nat) > 0 {
		t.Errorf("left after removal:\n%s", strings.Join(ruleLines(t, "filter", "nat"), "\n"))
	}
}
