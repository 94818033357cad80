package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var bridgeMode = Mode{Kind: KindBridge, Network: DefaultNetwork}

// freePort asks the kernel for a port nobody holds right now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// freeRange finds n consecutive ports, outside the kernel's ephemeral
// range, that nobody holds right now.
func freeRange(t *testing.T, n int) uint16 {
	t.Helper()
	for base := 20000 + os.Getpid()%5000; base < 32000; base += n {
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = probePort(PortBinding{HostPort: uint16(p), Proto: "tcp"}) == nil
		}
		if ok {
			return uint16(base)
		}
	}
	t.Fatal("no free port range")
	return 0
}

func TestBridgePublishedPort(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, cfg := newTestManager(t)
	hp := freePort(t)
	ports, err := ParsePublish(fmt.Sprintf("%d:80", hp))
	if err != nil {
		t.Fatal(err)
	}
	web, err := m.Setup(ctx, Request{ID: "web1", Name: "web", Mode: bridgeMode, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	startHTTPD(t, web.NetnsPath, "hello from web\n")

	// From the host over 127.0.0.1: portmap's snat plus route_localnet.
	got, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hp))
	if err != nil || got != "hello from web\n" {
		t.Fatalf("GET 127.0.0.1:%d = %q, %v", hp, got, err)
	}
	b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + cfg.DefaultBridge + "/route_localnet")
	if err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Errorf("route_localnet on %s = %q, %v; want 1", cfg.DefaultBridge, b, err)
	}

	// From a second namespace through the bridge, by address.
	client, err := m.Setup(ctx, Request{ID: "client1", Name: "client", Mode: bridgeMode})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := web.Primary()
	if !cfg.DefaultSubnet.Contains(p.Address.Addr()) || p.Gateway != cfg.DefaultSubnet.Addr().Next() || p.IfName != "eth0" || p.MAC == "" {
		t.Errorf("attachment %+v not on %s", p, cfg.DefaultSubnet)
	}
	got, err = wgetIn(client.NetnsPath, fmt.Sprintf("http://%s:80/", p.Address.Addr()))
	if err != nil || got != "hello from web\n" {
		t.Fatalf("GET %s from client = %q, %v", p.Address.Addr(), got, err)
	}
	if lines, _ := PortLines(web.Ports, ""); !slices.Equal(lines, []string{fmt.Sprintf("80/tcp -> 0.0.0.0:%d", hp)}) {
		t.Errorf("port lines %q", lines)
	}
	for _, id := range []string{"web1", "client1"} {
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// DEL must remove portmap's DNAT chain: nothing answers any more.
	if got, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hp)); err == nil {
		t.Errorf("published port still answers after teardown: %q", got)
	}
	if out, _ := exec.Command("iptables-save", "-t", "nat").Output(); strings.Contains(string(out), `id: \"web1\"`) {
		t.Errorf("DNAT rules of web1 left after teardown:\n%s", out)
	}
}

func TestPublishAllRandomPort(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, _ := newTestManager(t)
	exposed, err := ParseExpose("80/tcp")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := m.Setup(ctx, Request{ID: "rand1", Name: "rand", Mode: bridgeMode, Ports: PublishAll(exposed, nil)})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := ephemeralRange()
	if len(sb.Ports) != 1 || sb.Ports[0].HostPort < lo || sb.Ports[0].HostPort > hi {
		t.Fatalf("-P gave %+v, want one port in %d-%d", sb.Ports, lo, hi)
	}
	startHTTPD(t, sb.NetnsPath, "random\n")
	lines, err := PortLines(sb.Ports, "80")
	if err != nil || len(lines) != 1 {
		t.Fatalf("port 80 = %q, %v", lines, err)
	}
	got, err := httpGet("http://" + strings.Replace(lines[0], "0.0.0.0", "127.0.0.1", 1) + "/")
	if err != nil || got != "random\n" {
		t.Fatalf("GET %s = %q, %v", lines[0], got, err)
	}
	// -p 127.0.0.1:LO-HI:80 takes one free port of the range; the second
	// container asking for the same range gets another one.
	lo2 := freeRange(t, 2)
	spec := fmt.Sprintf("127.0.0.1:%d-%d:80", lo2, lo2+1)
	var got2 []uint16
	for _, id := range []string{"range1", "range2"} {
		ports, err := ParsePublish(spec)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := m.Setup(ctx, Request{ID: id, Mode: bridgeMode, Ports: ports})
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		got2 = append(got2, rs.Ports[0].HostPort)
	}
	if got2[0] == got2[1] || got2[0] < lo2 || got2[0] > lo2+1 || got2[1] < lo2 || got2[1] > lo2+1 || !(got2[0] != 0) {
		t.Fatalf("range %s gave %v", spec, got2)
	}
	ports, _ := ParsePublish(spec)
	if _, err := m.Setup(ctx, Request{ID: "range3", Mode: bridgeMode, Ports: ports}); !errors.Is(err, ErrPortAllocated) {
		t.Fatalf("third container on a full range: %v", err)
	}
	// The port is kept when the manager is reopened from its files.
	again, err := New(ctx, Config{Root: m.root, NetnsDir: m.netnsDir, Store: m.store})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := again.Sandbox("rand1")
	if err != nil || s2.Ports[0] != sb.Ports[0] {
		t.Fatalf("reopened sandbox = %+v, %v", s2, err)
	}
}

func TestNoneHasOnlyLoopback(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, _ := newTestManager(t)
	sb, err := m.Setup(ctx, Request{ID: "none1", Mode: Mode{Kind: KindNone}})
	if err != nil {
		t.Fatal(err)
	}
	if links := linksIn(t, sb.NetnsPath); !slices.Equal(links, []string{"lo"}) {
		t.Fatalf("links in none netns = %q, want only lo", links)
	}
	out, err := exec.Command("nsenter", "--net="+sb.NetnsPath, "ip", "-o", "link", "show", "lo").Output()
	if err != nil || !strings.Contains(string(out), "UP") {
		t.Fatalf("lo not up: %s %v", out, err)
	}
	if err := m.Teardown(ctx, "none1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sb.NetnsPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("netns file left: %v", err)
	}
}

func TestHostAndContainerModes(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, _ := newTestManager(t)
	host, err := m.Setup(ctx, Request{ID: "host1", Mode: Mode{Kind: KindHost}, Ports: []PortBinding{{HostPort: 1, ContainerPort: 1, Proto: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if host.NetnsPath != "" || len(host.Ports) != 0 {
		t.Fatalf("host mode sandbox %+v: want no netns and no ports", host)
	}
	owner, err := m.Setup(ctx, Request{ID: "owner1", Mode: bridgeMode})
	if err != nil {
		t.Fatal(err)
	}
	mode, err := ParseMode("container:owner")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Setup(ctx, Request{ID: "joiner1", Mode: mode, ContainerNetns: owner.NetnsPath, Ports: []PortBinding{{ContainerPort: 80, Proto: "tcp"}}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("container mode with ports: %v, want ErrConflict", err)
	}
	joiner, err := m.Setup(ctx, Request{ID: "joiner1", Mode: mode, ContainerNetns: owner.NetnsPath})
	if err != nil {
		t.Fatal(err)
	}
	if joiner.NetnsPath != owner.NetnsPath {
		t.Fatalf("joiner netns %s, want %s", joiner.NetnsPath, owner.NetnsPath)
	}
	if err := m.Teardown(ctx, "joiner1"); err != nil {
		t.Fatal(err)
	}
	if links := linksIn(t, owner.NetnsPath); !slices.Contains(links, "eth0") {
		t.Fatalf("joiner teardown broke the owner's netns: %q", links)
	}
	for _, id := range []string{"owner1", "host1"} {
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUserNetwork(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, _ := newTestManager(t)
	subnet := "10.215." + strconv.Itoa(os.Getpid()%200) + ".0/24"
	n, err := m.CreateNetwork(ctx, CreateOptions{Name: "appnet", Subnet: mustPrefix(t, subnet)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(n.Bridge, "fb-") || len(n.ID) != 64 || !n.UserSubnet {
		t.Fatalf("network record %+v", n)
	}
	staticIP := mustPrefix(t, subnet).Addr().Next().Next().Next().Next().Next() // .5
	web, err := m.Setup(ctx, Request{ID: "uweb", Name: "web", Hostname: "uweb", Mode: Mode{Kind: KindBridge, Network: "appnet"},
		IP: staticIP.String(), MAC: "02:42:ac:11:00:99", Aliases: []string{"www"}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := web.Primary()
	if p.Address.Addr() != staticIP || !strings.EqualFold(p.MAC, "02:42:ac:11:00:99") {
		t.Fatalf("--ip/--mac-address not applied: %+v", p)
	}
	out, _ := exec.Command("nsenter", "--net="+web.NetnsPath, "ip", "-o", "addr", "show", "eth0").Output()
	if !strings.Contains(string(out), staticIP.String()+"/24") {
		t.Fatalf("eth0 in web: %s", out)
	}
	startHTTPD(t, web.NetnsPath, "user net\n")
	cli, err := m.Setup(ctx, Request{ID: "ucli", Name: "cli", Mode: Mode{Kind: KindBridge, Network: n.ID[:12]}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := wgetIn(cli.NetnsPath, "http://"+staticIP.String()+"/")
	if err != nil || got != "user net\n" {
		t.Fatalf("cli -> web by IP: %q, %v", got, err)
	}

	// By name: the hosts file the daemon would bind-mount at /etc/hosts.
	hosts, err := m.Hosts(ctx, "ucli", HostsOptions{ExtraHosts: []string{"db:10.9.9.9"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hosts), staticIP.String()+"\tweb www\n") || !strings.Contains(string(hosts), "10.9.9.9\tdb\n") {
		t.Fatalf("hosts of cli:\n%s", hosts)
	}
	hostsFile := filepath.Join(t.TempDir(), "hosts")
	if err := WriteInPlace(hostsFile, hosts); err != nil {
		t.Fatal(err)
	}
	got, err = wgetWithHosts(cli.NetnsPath, hostsFile, "http://web/")
	if err != nil || got != "user net\n" {
		t.Fatalf("cli -> web by name: %q, %v", got, err)
	}
	if nb := m.Neighbours("uweb"); !slices.Equal(nb, []string{"ucli"}) {
		t.Fatalf("neighbours of web = %q", nb)
	}

	// Connect a default-bridge container, then disconnect it.
	other, err := m.Setup(ctx, Request{ID: "uother", Name: "other", Mode: bridgeMode})
	if err != nil {
		t.Fatal(err)
	}
	att, err := m.Connect(ctx, "uother", "appnet", EndpointOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if att.IfName != "eth1" || !slices.Contains(linksIn(t, other.NetnsPath), "eth1") {
		t.Fatalf("connect gave %+v, links %q", att, linksIn(t, other.NetnsPath))
	}
	if _, err := m.Connect(ctx, "uother", "appnet", EndpointOptions{}); !errors.Is(err, ErrConnected) {
		t.Fatalf("second connect: %v", err)
	}
	got, err = wgetIn(other.NetnsPath, "http://"+staticIP.String()+"/")
	if err != nil || got != "user net\n" {
		t.Fatalf("other -> web after connect: %q, %v", got, err)
	}
	if err := m.RemoveNetwork(ctx, "appnet"); !errors.Is(err, ErrNetworkInUse) {
		t.Fatalf("rm of a network in use: %v", err)
	}
	if err := m.Disconnect(ctx, "uother", "appnet"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(linksIn(t, other.NetnsPath), "eth1") {
		t.Fatalf("eth1 still there after disconnect")
	}
	if err := m.Disconnect(ctx, "uother", "appnet"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("second disconnect: %v", err)
	}
	for _, id := range []string{"uweb", "ucli", "uother"} {
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RemoveNetwork(ctx, "appnet"); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(n.Bridge); err == nil {
		t.Fatalf("bridge %s left after network rm", n.Bridge)
	}
	if _, err := m.Network(ctx, "appnet"); !errors.Is(err, ErrNetworkNotFound) {
		t.Fatalf("network after rm: %v", err)
	}
}

// wgetWithHosts runs wget in the namespace with hostsFile bind-mounted on
// /etc/hosts in a private mount namespace, as a container would see it.
func wgetWithHosts(ns, hostsFile, url string) (string, error) {
	out, err := exec.Command("timeout", "5", "nsenter", "--net="+ns, "unshare", "-m", "sh", "-c",
		`mount --bind "$1" /etc/hosts && exec busybox wget -q -O - "$2"`, "sh", hostsFile, url).CombinedOutput()
	return string(out), err
}

// TestTeardownWithoutCache: when libcni's cache entry of an attachment is
// gone, DEL is built again from the network and the sandbox's ports, with
// portmap exactly when the container publishes ports, so nothing is left:
// not the DNAT chain, not the lease.
func TestTeardownWithoutCache(t *testing.T) {
	needRoot(t)
	inOwnNetns(t)
	ctx := context.Background()
	m, cfg := newTestManager(t)
	for _, tt := range []struct {
		id    string
		ports []PortBinding
	}{
		{"nocache1", []PortBinding{{ContainerPort: 80, Proto: "tcp"}}},
		{"nocache2", nil},
	} {
		sb, err := m.Setup(ctx, Request{ID: tt.id, Name: tt.id, Mode: bridgeMode, Ports: tt.ports})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := sb.Primary()
		addr := p.Address.Addr().String()
		had := rulesNaming(t, `\"`+tt.id+`\"`, addr+":")
		if (len(had) > 0) != (len(tt.ports) > 0) {
			t.Fatalf("%s with ports %v has these rules:\n%s", tt.id, tt.ports, strings.Join(had, "\n"))
		}
		cached, _ := filepath.Glob(filepath.Join(cfg.Root, "cache", "results", "*-"+tt.id+"-*"))
		if len(cached) != 1 {
			t.Fatalf("cache entries of %s: %q", tt.id, cached)
		}
		if err := os.Remove(cached[0]); err != nil {
			t.Fatal(err)
		}
		if err := m.Teardown(ctx, tt.id); err != nil {
			t.Fatalf("teardown of %s without cache: %v", tt.id, err)
		}
		if left := rulesNaming(t, `\"`+tt.id+`\"`, addr+":"); len(left) > 0 {
			t.Errorf("teardown of %s without cache left:\n%s", tt.id, strings.Join(left, "\n"))
		}
		if leases, _ := filepath.Glob(filepath.Join(cfg.Root, "ipam", "*", addr)); len(leases) > 0 {
			t.Errorf("lease of %s left: %q", tt.id, leases)
		}
	}
}
