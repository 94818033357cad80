package network

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// inOwnNetns moves the calling test, for the rest of its run (cleanups
// included), into a new network namespace with lo up, which then plays the
// host: the manager's bridges, iptables rules and sysctls land there, so
// the test may set the FORWARD policy to DROP without touching the machine
// or racing other packages' tests. The test's goroutine is locked to its
// thread and never unlocked, so the Go runtime throws the thread away when
// the test ends, and the namespace with it. Everything the manager runs
// (CNI plugins, iptables, ip) is forked from the calling goroutine and
// inherits the namespace. A subtest runs on a goroutine of its own, in the
// machine's namespace: it must call the returned enter first.
func inOwnNetns(t *testing.T) (enter func(*testing.T)) {
	t.Helper()
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare netns: %v", err)
	}
	if err := loopbackUp(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return func(t *testing.T) {
		t.Helper()
		runtime.LockOSThread() // never unlocked, as above
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Fatalf("join the test's netns: %v", err)
		}
	}
}

// outsideHost makes a namespace that acts as a host beyond the test's
// "host" namespace: a veth pair ext0 (hostAddr, the test's side) - eth0
// (outsideAddr, the outside side) with a /30 of its own, and no route back
// to any container subnet, so only masqueraded traffic can be answered. It
// returns the outside namespace's path.
func outsideHost(t *testing.T, hostAddr, outsideAddr string) string {
	t.Helper()
	ns := filepath.Join(t.TempDir(), "outside")
	if err := createNetns(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetns(ns) })
	for _, args := range [][]string{
		{"ip", "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "addr", "add", hostAddr + "/30", "dev", "ext0"},
		{"ip", "link", "set", "ext0", "up"},
		{"nsenter", "--net=" + ns, "ip", "addr", "add", outsideAddr + "/30", "dev", "eth0"},
		{"nsenter", "--net=" + ns, "ip", "link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	return ns
}

// serveRemoteAddr listens on addr:0 inside the namespace at ns and answers
// every HTTP request with the address the connection came from. It returns
// the URL to ask.
func serveRemoteAddr(t *testing.T, ns, addr string) string {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Locked and never unlocked: the thread is thrown away after the
		// socket is made in the namespace; the socket stays there.
		runtime.LockOSThread()
		f, err := os.Open(ns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		l, err := net.Listen("tcp4", addr+":0")
		ch <- result{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		host, _, _ := net.SplitHostPort(req.RemoteAddr)
		fmt.Fprint(w, host)
	})}
	go srv.Serve(r.l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + r.l.Addr().String() + "/"
}

// ruleLines is the iptables-save output of the calling thread's namespace
// (the test's own, after inOwnNetns), rules and chain declarations only.
func ruleLines(t *testing.T, tables ...string) []string {
	t.Helper()
	var lines []string
	for _, table := range tables {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "-A ") || (strings.HasPrefix(l, ":") && !strings.Contains(l, " ACCEPT ") && !strings.Contains(l, " DROP ")) {
				lines = append(lines, table+" "+l)
			}
		}
	}
	return lines
}

// TestOutsideThroughNAT: a container on the default bridge reaches a host
// outside, which sees the connection come from the host's address
// (masqueraded), not the container's; this works with the FORWARD policy
// DROP, through fusebox's own chain; the outside host reaches a published
// port; and none of it adds an iptables rule per container.
func TestOutsideThroughNAT(t *testing.T) {
	needRoot(t)
	inOwnNetns(t)
	if out, err := exec.Command("iptables", "-w", "-P", "FORWARD", "DROP").CombinedOutput(); err != nil {
		t.Fatalf("FORWARD policy: %v: %s", err, out)
	}
	ctx := context.Background()
	m, _ := newTestManager(t)
	const hostAddr, outsideAddr = "192.0.2.1", "192.0.2.2"
	outside := outsideHost(t, hostAddr, outsideAddr)
	url := serveRemoteAddr(t, outside, outsideAddr)

	m.Setup(ctx, Request{ID: "warm", Mode: bridgeMode}) // makes the bridge
	if err := m.Teardown(ctx, "warm"); err != nil {
		t.Fatal(err)
	}
	before := ruleLines(t, "filter", "nat", "mangle", "raw")
	sb, err := m.Setup(ctx, Request{ID: "nat1", Name: "nat1", Mode: bridgeMode})
	if err != nil {
		t.Fatal(err)
	}
	if after := ruleLines(t, "filter", "nat", "mangle", "raw"); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("a container without published ports changed the rules:\nbefore\n%s\nafter\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	p, _ := sb.Primary()
	got, err := wgetIn(sb.NetnsPath, url)
	if err != nil || got != hostAddr {
		t.Fatalf("container %s -> outside %s: seen from %q (%v), want the host's %s", p.Address.Addr(), url, got, err, hostAddr)
	}

	// Without the jump to fusebox's chain the DROP policy wins: the rules
	// above are what let the container out.
	jump := []string{"-m", "comment", "--comment", jumpComment, "-j", forwardChain}
	if err := iptables(append([]string{"-D", "FORWARD"}, jump...)...); err != nil {
		t.Fatal(err)
	}
	if got, err := wgetIn(sb.NetnsPath, url); err == nil {
		t.Errorf("reached the outside with FORWARD DROP and no fusebox chain: %q", got)
	}
	if err := iptables(append([]string{"-I", "FORWARD", "1"}, jump...)...); err != nil {
		t.Fatal(err)
	}

	// A published port, from the outside host: DNATed, then forwarded into
	// the bridge by the DNAT state.
	hp := freePort(t)
	web, err := m.Setup(ctx, Request{ID: "natweb", Name: "natweb", Mode: bridgeMode,
		Ports: []PortBinding{{HostPort: hp, ContainerPort: 80, Proto: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	startHTTPD(t, web.NetnsPath, "published\n")
	if got, err := wgetIn(outside, fmt.Sprintf("http://%s:%d/", hostAddr, hp)); err != nil || got != "published\n" {
		t.Errorf("outside -> published port %d: %q, %v", hp, got, err)
	}
	for _, id := range []string{"nat1", "natweb"} {
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// What is left is portmap's shared chains (CNI-HOSTPORT-*), which stay
	// by design; its chain for natweb (CNI-DN-<hash>) is gone.
	had := map[string]bool{}
	for _, l := range before {
		had[l] = true
	}
	for _, l := range ruleLines(t, "filter", "nat", "mangle", "raw") {
		if !had[l] && (!strings.Contains(l, "CNI-HOSTPORT-") || strings.Contains(l, "CNI-DN-")) {
			t.Errorf("left after teardown: %s", l)
		}
	}
}
