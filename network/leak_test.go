package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// snapshot counts what a sandbox can leave behind on the host.
type snapshot struct {
	Veths  int
	Rules  map[string]int // iptables-save lines per table
	Netns  int            // files in the netns dir
	Leases int            // host-local lease files
	Cache  int            // libcni cache entries
}

// The tests that take snapshots run in their own network namespace
// (inOwnNetns), so every veth and iptables line counted is theirs: other
// packages' test daemons, running at the same time, cannot change the
// counts, and the counts must match exactly.
func takeSnapshot(t *testing.T, cfg Config) snapshot {
	t.Helper()
	s := snapshot{Rules: map[string]int{}}
	out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" {
			s.Veths++
		}
	}
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				s.Rules[table]++
			}
		}
	}
	s.Netns = countFiles(t, cfg.NetnsDir, func(string) bool { return true })
	leases, _ := filepath.Glob(filepath.Join(cfg.Root, "ipam", "*", "*"))
	for _, l := range leases {
		if isLeaseFile(filepath.Base(l)) {
			s.Leases++
		}
	}
	s.Cache = countFiles(t, filepath.Join(cfg.Root, "cache", "results"), func(string) bool { return true })
	return s
}

func countFiles(t *testing.T, dir string, keep func(string) bool) int {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if keep(e.Name()) {
			n++
		}
	}
	return n
}

func (s snapshot) String() string {
	return fmt.Sprintf("veths=%d rules=%v netns=%d leases=%d cache=%d", s.Veths, s.Rules, s.Netns, s.Leases, s.Cache)
}

// sameSnapshot reports whether after counts exactly what before did.
func sameSnapshot(before, after snapshot) bool {
	return before.String() == after.String()
}

// TestNothingLeaks runs 50 setup/teardown cycles of a container with a
// published port and a second network, and compares the counts of veths,
// iptables rules, netns files, leases and cache entries with those before;
// then it removes the second network, whose own rules (isolation,
// forwarding, masquerade) must go with it.
func TestNothingLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("50 setup/teardown cycles: slow")
	}
	needRoot(t)
	inOwnNetns(t)
	ctx := context.Background()
	m, cfg := newTestManager(t)
	subnet := mustPrefix(t, "10.216."+strconv.Itoa(os.Getpid()%200)+".0/24")
	leaknet, err := m.CreateNetwork(ctx, CreateOptions{Name: "leaknet", Subnet: subnet})
	if err != nil {
		t.Fatal(err)
	}
	cycle := func(i int) {
		t.Helper()
		id := "leak" + strconv.Itoa(i)
		ports := []PortBinding{{HostIP: "127.0.0.1", ContainerPort: 80, Proto: "tcp"}, {ContainerPort: 53, Proto: "udp"}}
		if _, err := m.Setup(ctx, Request{ID: id, Name: id, Mode: bridgeMode, Ports: ports}); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if _, err := m.Connect(ctx, id, "leaknet", EndpointOptions{}); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	// One cycle first: it makes the bridges and portmap's shared chains
	// (CNI-HOSTPORT-*), which stay by design.
	cycle(-1)
	before := takeSnapshot(t, cfg)
	if before.Netns != 0 || before.Leases != 0 || before.Cache != 0 {
		t.Fatalf("leftovers after one cycle: %v", before)
	}
	for i := range 50 {
		cycle(i)
	}
	after := takeSnapshot(t, cfg)
	t.Logf("after 50 cycles: %v", after)
	if !sameSnapshot(before, after) {
		t.Fatalf("leak after 50 cycles:\nbefore %v\nafter  %v", before, after)
	}

	own := []string{leaknet.Bridge, leaknet.Subnet.String()}
	if got, want := len(rulesNaming(t, own...)), len(networkRules(leaknet, cfg.DefaultBridge)); got != want {
		t.Fatalf("leaknet has %d rules naming it, want its %d:\n%s", got, want, strings.Join(rulesNaming(t, own...), "\n"))
	}
	if err := m.RemoveNetwork(ctx, "leaknet"); err != nil {
		t.Fatal(err)
	}
	if left := rulesNaming(t, own...); len(left) > 0 {
		t.Fatalf("rules of the removed network leaknet are left:\n%s", strings.Join(left, "\n"))
	}
	if _, err := net.InterfaceByName(leaknet.Bridge); err == nil {
		t.Fatalf("bridge %s left after network rm", leaknet.Bridge)
	}
}

// TestCleanupAfterCrash leaves sandboxes behind as a crashed daemon would,
// with and without their records, and checks that Cleanup on a new manager
// removes all of them but the live one.
func TestCleanupAfterCrash(t *testing.T) {
	needRoot(t)
	inOwnNetns(t)
	ctx := context.Background()
	m, cfg := newTestManager(t)
	// A first container with a port makes the bridge and portmap's shared
	// chains (CNI-HOSTPORT-*), which stay by design.
	m.Setup(ctx, Request{ID: "warm", Mode: bridgeMode, Ports: []PortBinding{{ContainerPort: 80, Proto: "tcp"}}})
	m.Teardown(ctx, "warm")
	before := takeSnapshot(t, cfg)

	for _, id := range []string{"dead1", "live1", "dead2", "dead3"} {
		ports := []PortBinding{{ContainerPort: 80, Proto: "tcp"}}
		if _, err := m.Setup(ctx, Request{ID: id, Name: id, Mode: bridgeMode, Ports: ports}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Setup(ctx, Request{ID: "dead4", Mode: Mode{Kind: KindNone}}); err != nil {
		t.Fatal(err)
	}
	// dead2 and dead4 lose their records: only CNI's cache, the lease and
	// the netns file tell of them. dead2's is left empty, as a crash of
	// the machine leaves a record written but not synced (writeRecord).
	if err := os.Truncate(m.sandboxPath("dead2"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.sandboxPath("dead4")); err != nil {
		t.Fatal(err)
	}
	// dead3's namespace is lost too (as after a crash that emptied /run):
	// the bridge plugin cannot find its masquerade rules by address then.
	if err := removeNetns(filepath.Join(cfg.NetnsDir, "dead3")); err != nil {
		t.Fatal(err)
	}
	// dead5 crashed between making its netns and writing its record; a new
	// setup of the same id clears the leftovers instead of failing.
	if err := createNetns(filepath.Join(cfg.NetnsDir, "dead5")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Setup(ctx, Request{ID: "dead5", Mode: bridgeMode}); err != nil {
		t.Fatalf("setup over leftovers: %v", err)
	}
	cfg.Store = m.store
	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Cleanup(ctx, map[string]bool{"live1": true}); err != nil {
		t.Fatal(err)
	}
	live, err := m2.Sandbox("live1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Sandbox("dead1"); !errors.Is(err, ErrNoSandbox) {
		t.Fatalf("dead1 still known: %v", err)
	}
	mid := takeSnapshot(t, cfg)
	if mid.Netns != 1 || mid.Leases != 1 || mid.Veths != before.Veths+1 {
		t.Fatalf("after cleanup want only live1's netns, lease and veth: %v (before %v)", mid, before)
	}
	if links := linksIn(t, live.NetnsPath); len(links) != 2 {
		t.Fatalf("live1 lost its interfaces: %q", links)
	}
	if err := m2.Teardown(ctx, "live1"); err != nil {
		t.Fatal(err)
	}
	if after := takeSnapshot(t, cfg); !sameSnapshot(before, after) {
		t.Fatalf("leftovers:\nbefore %v\nafter  %v", before, after)
	}
}

// TestBadInputLeavesNothing: every refused request fails before anything is
// made, with an error callers can test.
func TestBadInputLeavesNothing(t *testing.T) {
	needRoot(t)
	enter := inOwnNetns(t)
	ctx := context.Background()
	m, cfg := newTestManager(t)
	holder, err := m.Setup(ctx, Request{ID: "holder", Name: "holder", Mode: bridgeMode, Ports: []PortBinding{{HostPort: freePort(t), ContainerPort: 80, Proto: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	held := holder.Ports[0].HostPort
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hostHeld := uint16(l.Addr().(*net.TCPAddr).Port)
	before := takeSnapshot(t, cfg)

	tests := []struct {
		name string
		req  Request
		is   error
		text string
	}{
		{"port of another container", Request{Ports: []PortBinding{{HostPort: held, ContainerPort: 80, Proto: "tcp"}}}, ErrPortAllocated,
			fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated", held)},
		{"same port on 127.0.0.1", Request{Ports: []PortBinding{{HostIP: "127.0.0.1", HostPort: held, ContainerPort: 81, Proto: "tcp"}}}, ErrPortAllocated,
			fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", held)},
		{"port of a host process", Request{Ports: []PortBinding{{HostPort: hostHeld, ContainerPort: 80, Proto: "tcp"}}}, ErrPortAllocated,
			"address already in use"},
		{"two bindings of one port", Request{Ports: []PortBinding{{HostPort: held + 1, ContainerPort: 80, Proto: "tcp"}, {HostPort: held + 1, ContainerPort: 81, Proto: "tcp"}}}, ErrPortAllocated, "port is already allocated"},
		{"address the host lacks", Request{Ports: []PortBinding{{HostIP: "203.0.113.77", HostPort: held + 2, ContainerPort: 80, Proto: "tcp"}}}, syscall.EADDRNOTAVAIL,
			"Bind for 203.0.113.77"},
		{"container port 0", Request{Ports: []PortBinding{{ContainerPort: 0, Proto: "tcp"}}}, ErrInvalidPort, "invalid containerPort"},
		{"bad mac", Request{MAC: "02:42:zz:00:00:01"}, ErrInvalidAddress, "invalid MAC address: 02:42:zz:00:00:01"},
		{"ip on default bridge", Request{IP: "10.214.0.9"}, ErrConflict, "user specified IP address is supported on user defined networks only"},
		{"alias on default bridge", Request{Aliases: []string{"x"}}, ErrConflict, "network-scoped alias is supported only for containers in user defined networks"},
		{"unknown network", Request{Mode: Mode{Kind: KindBridge, Network: "nosuchnet"}}, ErrNetworkNotFound, "network nosuchnet not found"},
		{"id taken", Request{ID: "holder"}, ErrSandboxExists, "sandbox already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enter(t)
			req := tt.req
			if req.ID == "" {
				req.ID = "bad"
			}
			req.Name = "bad"
			if req.Mode.Kind == "" {
				req.Mode = bridgeMode
			}
			_, err := m.Setup(ctx, req)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("Setup = %v; want %v containing %q", err, tt.is, tt.text)
			}
			if after := takeSnapshot(t, cfg); !sameSnapshot(before, after) {
				t.Fatalf("refused setup left things:\nbefore %v\nafter  %v", before, after)
			}
			if _, err := m.Sandbox("bad"); !errors.Is(err, ErrNoSandbox) {
				t.Fatalf("refused setup left a record")
			}
		})
	}
	// A caller that gave up (cancelled context) gets an error and no leftovers.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.Setup(cancelled, Request{ID: "bad", Mode: bridgeMode, Ports: []PortBinding{{ContainerPort: 80, Proto: "tcp"}}}); err == nil {
		t.Fatalf("setup with a cancelled context succeeded")
	}
	if after := takeSnapshot(t, cfg); !sameSnapshot(before, after) {
		t.Fatalf("cancelled setup left things:\nbefore %v\nafter  %v", before, after)
	}
	// The same port over udp is another port.
	if _, err := m.Setup(ctx, Request{ID: "udp", Mode: bridgeMode, Ports: []PortBinding{{HostPort: held, ContainerPort: 80, Proto: "udp"}}}); err != nil {
		t.Fatalf("udp on a tcp-held port: %v", err)
	}
	for _, id := range []string{"udp", "holder"} {
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}
