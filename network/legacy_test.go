package network

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

func TestSplitRule(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`-A CNI-ADMIN -i fb-1 -j DROP`, []string{"-A", "CNI-ADMIN", "-i", "fb-1", "-j", "DROP"}},
		{`-A CNI-ADMIN -i x -o fb-+ -m comment --comment "fusebox network isolation" -j DROP`,
			[]string{"-A", "CNI-ADMIN", "-i", "x", "-o", "fb-+", "-m", "comment", "--comment", "fusebox network isolation", "-j", "DROP"}},
		{`-A X -m comment --comment "name: \"bridge\" id: \"a b\"" -j ACCEPT`,
			[]string{"-A", "X", "-m", "comment", "--comment", `name: "bridge" id: "a b"`, "-j", "ACCEPT"}},
		{`-A X ! -o br0 -m comment --comment fusebox -j MASQUERADE`,
			[]string{"-A", "X", "!", "-o", "br0", "-m", "comment", "--comment", "fusebox", "-j", "MASQUERADE"}},
	}
	for _, tt := range tests {
		got, err := splitRule(tt.line)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitRule(%s) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
	if _, err := splitRule(`-A X --comment "open`); err == nil {
		t.Errorf("unterminated quote: no error")
	}
}

// olderList is the config list fusebox versions before the per-network
// rules used for a bridge network: per-container masquerade (ipMasq),
// portmap always, and the firewall plugin.
func olderList(t *testing.T, m *Manager, n Network) *libcni.NetworkConfigList {
	t.Helper()
	l, err := libcni.NetworkConfFromBytes([]byte(`{"cniVersion":"1.0.0","name":"` + n.Name + `","plugins":[
		{"type":"bridge","bridge":"` + n.Bridge + `","isGateway":true,"ipMasq":true,"hairpinMode":true,
		 "ipam":{"type":"host-local","ranges":[[{"subnet":"` + n.Subnet.String() + `"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"` + filepath.Join(m.root, "ipam") + `"}},
		{"type":"portmap","capabilities":{"portMappings":true},"snat":true},
		{"type":"firewall","backend":"iptables"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestOlderVersionLeftovers: what a fusebox version that ran the loopback
// and firewall plugins and masqueraded per container left behind is still
// removed: a sandbox with its record (Teardown), one whose record and
// namespace are both lost (Cleanup, through libcni's cache), and the
// isolation rules in CNI-ADMIN (New), but only those of its own bridges.
func TestOlderVersionLeftovers(t *testing.T) {
	needRoot(t)
	for _, p := range []string{"loopback", "firewall"} {
		if !pluginPresent(DefaultPluginDirs, p) {
			t.Skipf("needs the CNI plugin %s to make an older version's sandbox", p)
		}
	}
	inOwnNetns(t)
	ctx := context.Background()
	m, cfg := newTestManager(t)
	n, err := m.Network(ctx, DefaultNetwork)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := libcni.NetworkConfFromBytes([]byte(`{"cniVersion":"1.0.0","name":"` + loopbackNet + `","plugins":[{"type":"loopback"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// older sets a sandbox up as those versions did, and returns its
	// address.
	older := func(id string) string {
		t.Helper()
		ns := filepath.Join(cfg.NetnsDir, id)
		if err := createNetns(ns); err != nil {
			t.Fatal(err)
		}
		if _, err := m.cni.AddNetworkList(ctx, lo, &libcni.RuntimeConf{ContainerID: id, NetNS: ns, IfName: "lo"}); err != nil {
			t.Fatal(err)
		}
		rt := &libcni.RuntimeConf{ContainerID: id, NetNS: ns, IfName: "eth0", CapabilityArgs: map[string]any{
			"portMappings": []map[string]any{{"hostPort": int(freePort(t)), "containerPort": 80, "protocol": "tcp"}}}}
		if _, err := m.cni.AddNetworkList(ctx, olderList(t, m, n), rt); err != nil {
			t.Fatal(err)
		}
		att, err := m.cni.GetCachedAttachments(id)
		if err != nil || len(att) != 2 {
			t.Fatalf("cached attachments of %s: %d, %v", id, len(att), err)
		}
		out, err := exec.Command("nsenter", "--net="+ns, "ip", "-o", "-4", "addr", "show", "eth0").Output()
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(out))
		addr, _, _ := strings.Cut(f[3], "/")
		if err := m.saveSandbox(&Sandbox{ID: id, Name: id, Mode: bridgeMode, NetnsPath: ns, OwnNetns: true,
			Attachments: []Attachment{{Network: n.Name, NetworkID: n.ID, IfName: "eth0", Address: mustPrefix(t, f[3])}}}); err != nil {
			t.Fatal(err)
		}
		return addr
	}
	// left lists the rules that name a container by id or address.
	left := func(id, addr string) []string {
		return rulesNaming(t, `"`+id+`\"`, addr+"/32", addr+":")
	}
	addr1, addr2 := older("old1"), older("old2")
	for id, addr := range map[string]string{"old1": addr1, "old2": addr2} {
		// The bridge plugin's chain, portmap's DNAT, the firewall plugin's
		// ACCEPTs: the tests below cannot pass by finding nothing.
		if got := left(id, addr); len(got) < 4 {
			t.Fatalf("older sandbox %s made only these rules:\n%s", id, strings.Join(got, "\n"))
		}
	}

	if err := m.Teardown(ctx, "old1"); err != nil {
		t.Fatal(err)
	}
	if got := left("old1", addr1); len(got) > 0 {
		t.Errorf("teardown of an older sandbox left rules:\n%s", strings.Join(got, "\n"))
	}
	if atts, err := m.cni.GetCachedAttachments("old1"); err != nil || len(atts) > 0 {
		t.Errorf("teardown of an older sandbox left %d cached attachments (%v)", len(atts), err)
	}

	// old2 loses its record and its namespace (a crash that emptied /run):
	// only libcni's cache tells of it, and the bridge plugin cannot find its
	// masquerade rules by address.
	if err := os.Remove(m.sandboxPath("old2")); err != nil {
		t.Fatal(err)
	}
	if err := removeNetns(filepath.Join(cfg.NetnsDir, "old2")); err != nil {
		t.Fatal(err)
	}
	// And the older version's isolation rules in CNI-ADMIN, next to a rule
	// of another daemon's bridge and one of the administrator's.
	ours := []string{"-i", cfg.DefaultBridge, "-o", "fb-+", "-m", "comment", "--comment", isolationComment, "-j", "DROP"}
	theirs := []string{"-i", "fbx0000", "-o", "fb-+", "-m", "comment", "--comment", isolationComment, "-j", "DROP"}
	admins := []string{"-s", "192.0.2.9", "-j", "DROP"}
	for _, r := range [][]string{ours, theirs, admins} {
		if err := iptables(append([]string{"-A", legacyAdminChain}, r...)...); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Store = m.store
	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Cleanup(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := left("old2", addr2); len(got) > 0 {
		t.Errorf("cleanup of a lost older sandbox left rules:\n%s", strings.Join(got, "\n"))
	}
	if atts, err := m2.cni.GetCachedAttachments(""); err != nil || len(atts) > 0 {
		t.Errorf("cache after cleanup: %d attachments, %v", len(atts), err)
	}
	for _, tt := range []struct {
		rule []string
		want bool
	}{{ours, false}, {theirs, true}, {admins, true}} {
		if got := (rule{"filter", legacyAdminChain, tt.rule, false}).has(); got != tt.want {
			t.Errorf("CNI-ADMIN %q present = %v, want %v", tt.rule, got, tt.want)
		}
	}
}
