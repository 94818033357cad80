package network

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// newSpareManager is newTestManager with spares on, as the daemon runs it,
// after one setup and teardown without: that one makes the bridge and the
// plugins' shared chains, which stay by design.
func newSpareManager(t *testing.T) (*Manager, Config) {
	t.Helper()
	m, cfg := newTestManager(t)
	ctx := context.Background()
	if _, err := m.Setup(ctx, Request{ID: "warm", Mode: bridgeMode}); err != nil {
		t.Fatal(err)
	}
	if err := m.Teardown(ctx, "warm"); err != nil {
		t.Fatal(err)
	}
	m.useSpare = true
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m, cfg
}

// counts are what one manager's sandboxes leave on the host: veths on its
// default bridge, iptables rules naming that bridge or its subnet, and the
// netns files, leases and CNI cache entries under its own directories.
// Spares are made and retired on goroutines of their own, which run in the
// machine's network namespace, so these tests cannot move into one of
// their own (inOwnNetns) and count only what is theirs instead.
type counts struct {
	veths, netns, leases, cache int
	rules                       string
}

func (c counts) String() string {
	return fmt.Sprintf("veths=%d netns=%d leases=%d cache=%d rules:\n%s", c.veths, c.netns, c.leases, c.cache, c.rules)
}

func ownCounts(t *testing.T, cfg Config) counts {
	t.Helper()
	s := takeSnapshot(t, cfg)
	c := counts{netns: s.Netns, leases: s.Leases, cache: s.Cache}
	out, err := exec.Command("ip", "-o", "link", "show", "master", cfg.DefaultBridge).Output()
	if err != nil {
		t.Fatal(err)
	}
	c.veths = strings.Count(string(out), "\n")
	subnet := cfg.DefaultSubnet.Masked().Addr().String()
	c.rules = strings.Join(rulesNaming(t, cfg.DefaultBridge, strings.TrimSuffix(subnet, "0")), "\n")
	return c
}

// awaitSpare asks for a spare, as the daemon does after a start, waits
// for it to be made, and fails without one.
func awaitSpare(t *testing.T, m *Manager) *Sandbox {
	t.Helper()
	m.Refill()
	m.mu.Lock()
	ch := m.filling
	m.mu.Unlock()
	if ch != nil {
		<-ch
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.spares) == 0 {
		t.Fatal("no spare sandbox after a default-network setup")
	}
	return m.spares[0].clone()
}

func TestSpareSandbox(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, cfg := newSpareManager(t)
	before := ownCounts(t, cfg)

	// No spare until a container asked for the default network.
	m.Refill()
	m.mu.Lock()
	early := m.filling != nil || len(m.spares) > 0
	m.mu.Unlock()
	if early {
		t.Fatal("a spare was made before any container asked for the default network")
	}

	// The first setup makes its own sandbox, and Refill a spare behind it.
	if _, err := m.Setup(ctx, Request{ID: "first", Mode: bridgeMode}); err != nil {
		t.Fatal(err)
	}
	spare := awaitSpare(t, m)
	if !strings.HasPrefix(spare.ID, spareKeyPrefix) {
		t.Fatalf("spare id %q", spare.ID)
	}
	if _, err := os.Stat(m.sandboxPath(spare.ID)); err != nil {
		t.Errorf("a spare's record is on disk until it is taken: %v", err)
	}
	if _, err := m.Sandbox(spare.ID); err == nil {
		t.Error("a spare shows as a container's sandbox")
	}
	if eps := m.Endpoints(DefaultNetwork); len(eps) != 1 || eps[0].ContainerID != "first" {
		t.Errorf("endpoints of the default network: %+v", eps)
	}

	// What a spare cannot serve gets a sandbox of its own.
	ports := []PortBinding{{ContainerPort: 80, Proto: "tcp"}}
	pub, err := m.Setup(ctx, Request{ID: "published", Mode: bridgeMode, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	if pub.Key != "" {
		t.Errorf("a container with published ports took the spare %s", pub.Key)
	}

	// The next plain one takes it: its netns and address, under its own id.
	sb, err := m.Setup(ctx, Request{ID: "second", Name: "second", Hostname: "h2", Mode: bridgeMode})
	if err != nil {
		t.Fatal(err)
	}
	att, _ := sb.Primary()
	if sb.Key != spare.ID || sb.NetnsPath != spare.NetnsPath || att.Address != spare.Attachments[0].Address {
		t.Fatalf("setup did not take the spare: %+v (spare %+v)", sb, spare)
	}
	if sb.ID != "second" || sb.Name != "second" || sb.Hostname != "h2" {
		t.Errorf("taken spare's record: %+v", sb)
	}
	if _, err := os.Stat(m.sandboxPath(spare.ID)); !os.IsNotExist(err) {
		t.Errorf("the spare's own record stays after it was taken: %v", err)
	}
	if got, err := m.Sandbox("second"); err != nil || got.Key != spare.ID {
		t.Errorf("Sandbox(second): %+v, %v", got, err)
	}
	if links := linksIn(t, sb.NetnsPath); len(links) != 2 {
		t.Errorf("links in a taken spare: %q", links)
	}
	if _, err := m.Setup(ctx, Request{ID: "second", Mode: bridgeMode}); err == nil {
		t.Error("a second setup of one id succeeded")
	}
	next := awaitSpare(t, m)
	if next.ID == spare.ID {
		t.Fatal("no new spare after the last was taken")
	}

	// Retire: the sandbox leaves the container at once, and a new setup of
	// that container waits for the teardown instead of colliding with it.
	done := m.Retire(ctx, "second", false)
	if _, err := m.Sandbox("second"); err == nil {
		t.Error("a retired sandbox is still the container's")
	}
	again, err := m.Setup(ctx, Request{ID: "second", Mode: bridgeMode})
	if err != nil {
		t.Fatalf("setup right after retire: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("retire: %v", err)
	}
	if again.Key != next.ID {
		t.Errorf("the new setup did not take the new spare: %+v", again)
	}
	if _, err := os.Stat(spare.NetnsPath); !os.IsNotExist(err) {
		t.Errorf("the retired sandbox's netns is left: %v", err)
	}

	// Published ports are freed before Retire returns.
	if err := <-m.Retire(ctx, "published", true); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckPorts("x", pub.Ports); err != nil {
		t.Errorf("host port still taken after retire: %v", err)
	}

	for _, id := range []string{"first", "second"} {
		if err := <-m.Retire(ctx, id, false); err != nil {
			t.Fatal(err)
		}
	}
	awaitSpare(t, m)
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if after := ownCounts(t, cfg); after != before {
		t.Fatalf("left after close:\nbefore %s\nafter  %s", before, after)
	}
	// A closed manager makes no spares and still sets up.
	if sb, err := m.Setup(ctx, Request{ID: "late", Mode: bridgeMode}); err != nil || sb.Key != "" {
		t.Fatalf("setup after close: %+v, %v", sb, err)
	}
	if err := m.Teardown(ctx, "late"); err != nil {
		t.Fatal(err)
	}
}

// TestSpareAfterCrash: a daemon that dies with a spare leaves its record,
// netns and lease; the next manager's Cleanup removes them.
func TestSpareAfterCrash(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, cfg := newSpareManager(t)
	before := ownCounts(t, cfg)
	if _, err := m.Setup(ctx, Request{ID: "one", Mode: bridgeMode}); err != nil {
		t.Fatal(err)
	}
	spare := awaitSpare(t, m)
	if err := m.Teardown(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	// "kept" runs on a spare across the crash: Cleanup must know it by its
	// spare key, which its netns, CNI cache and lease carry.
	kept, err := m.Setup(ctx, Request{ID: "kept", Mode: bridgeMode})
	if err != nil || kept.Key != spare.ID {
		t.Fatalf("kept did not take the spare: %+v, %v", kept, err)
	}
	spare = awaitSpare(t, m)
	// The crash: m is dropped with its spare, never closed.
	m.mu.Lock()
	m.spares, m.closed = nil, true
	m.mu.Unlock()
	cfg.Store = m.store
	m2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Cleanup(ctx, map[string]bool{"kept": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spare.NetnsPath); !os.IsNotExist(err) {
		t.Errorf("the spare's netns is left: %v", err)
	}
	if links := linksIn(t, kept.NetnsPath); len(links) != 2 {
		t.Errorf("a live container on a taken spare lost its interfaces: %q", links)
	}
	if mid := ownCounts(t, cfg); mid.netns != 1 || mid.leases != 1 || mid.veths != 1 {
		t.Errorf("after cleanup want kept's netns, lease and veth only: %s", mid)
	}
	if err := m2.Teardown(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(cfg.Root, "sandboxes", "*.json")); len(left) != 0 {
		t.Errorf("records left: %v", left)
	}
	if after := ownCounts(t, cfg); after != before {
		t.Fatalf("left after cleanup:\nbefore %s\nafter  %s", before, after)
	}
}

// TestSpareRecycled: a retired sandbox that was a spare, on the default
// network alone and not shared, becomes a spare again when the daemon says
// its container could not have changed it; nothing else does.
func TestSpareRecycled(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, cfg := newSpareManager(t)
	before := ownCounts(t, cfg)
	if _, err := m.Setup(ctx, Request{ID: "own", Mode: bridgeMode}); err != nil {
		t.Fatal(err)
	}
	spare := awaitSpare(t, m)
	a, err := m.Setup(ctx, Request{ID: "a", Mode: bridgeMode})
	if err != nil || a.Key != spare.ID {
		t.Fatalf("a did not take the spare: %+v, %v", a, err)
	}
	// A container sharing a's namespace keeps it from being recycled.
	if _, err := m.Setup(ctx, Request{ID: "peer", Mode: Mode{Kind: KindContainer, Container: "a"}, ContainerNetns: a.NetnsPath}); err != nil {
		t.Fatal(err)
	}
	if err := <-m.Retire(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.NetnsPath); !os.IsNotExist(err) {
		t.Errorf("a shared namespace was recycled: %v", err)
	}
	if err := m.Teardown(ctx, "peer"); err != nil {
		t.Fatal(err)
	}
	// Retire without recycle, or of a sandbox made for its container,
	// tears down.
	if err := <-m.Retire(ctx, "own", true); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	n := len(m.spares)
	m.mu.Unlock()
	if n != 0 {
		t.Errorf("a container's own sandbox was recycled: %d spares", n)
	}

	b0 := awaitSpare(t, m)
	b, err := m.Setup(ctx, Request{ID: "b", Mode: bridgeMode})
	if err != nil || b.Key != b0.ID {
		t.Fatalf("b did not take the spare: %+v, %v", b, err)
	}
	if err := <-m.Retire(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sandbox("b"); err == nil {
		t.Error("a recycled sandbox is still its container's")
	}
	c, err := m.Setup(ctx, Request{ID: "c", Mode: bridgeMode})
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := c.Primary()
	ba, _ := b.Primary()
	if c.Key != b0.ID || c.NetnsPath != b.NetnsPath || ca.Address != ba.Address || ca.EndpointID == ba.EndpointID {
		t.Errorf("c did not get b's recycled sandbox with an endpoint of its own: %+v (b %+v)", c, b)
	}
	if links := linksIn(t, c.NetnsPath); len(links) != 2 {
		t.Errorf("links in a recycled sandbox: %q", links)
	}
	if err := <-m.Retire(ctx, "c", false); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if after := ownCounts(t, cfg); after != before {
		t.Fatalf("left after close:\nbefore %s\nafter  %s", before, after)
	}
}
