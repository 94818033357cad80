package main

import (
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fusebox/fusebox/testdata"
)

// freePort is a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet fetches url from the host, retrying for a while (the server in
// the container may still be starting); it returns the body.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	var last error
	c := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := c.Get(url)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			last = err
			continue
		}
		return string(b)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// httpd is the run arguments of a busybox web server on port 80 serving
// the image's /var/www.
var httpd = []string{"busybox", "httpd", "-f", "-p", "80", "-h", "/var/www"}

func runArgs(opts []string, cmd ...string) []string {
	return append(append([]string{"run"}, opts...), cmd...)
}

func TestPublishedPortFromHostAndContainer(t *testing.T) {
	e := withBusybox(t)
	port := freePort(t)
	e.ok(runArgs([]string{"-d", "--name", "web", "-p", fmt.Sprintf("%d:80", port)}, httpd...)...)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if got := httpGet(t, url); got != testdata.BusyboxIndexContent {
		t.Errorf("GET %s from the host: %q", url, got)
	}
	if out := e.ok("port", "web"); out != fmt.Sprintf("80/tcp -> 0.0.0.0:%d\n", port) {
		t.Errorf("port web: %q", out)
	}
	if out := e.ok("port", "web", "80"); out != fmt.Sprintf("0.0.0.0:%d\n", port) {
		t.Errorf("port web 80: %q", out)
	}
	e.fail(1, "no public port '81/tcp' published for web", "port", "web", "81")
	if out := e.ok("ps", "--format", "{{.Ports}}"); out != fmt.Sprintf("0.0.0.0:%d->80/tcp\n", port) {
		t.Errorf("ps PORTS: %q", out)
	}
	if out := e.ok("ps"); !strings.Contains(out, "PORTS") || !strings.Contains(out, fmt.Sprintf("0.0.0.0:%d->80/tcp", port)) {
		t.Errorf("ps:\n%s", out)
	}
	ip := strings.TrimSpace(e.ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"))
	if net.ParseIP(ip) == nil {
		ip = strings.TrimSpace(e.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web"))
	}
	if net.ParseIP(ip) == nil {
		t.Fatalf("web has no address: %q", ip)
	}
	// Another container reaches it through the bridge, by address.
	if out := e.ok("run", "--rm", "busybox", "wget", "-q", "-O", "-", "http://"+ip+"/"); out != testdata.BusyboxIndexContent {
		t.Errorf("wget from another container by ip: %q", out)
	}
	// ... and by a --link alias.
	if out := e.ok("run", "--rm", "--link", "web:www", "busybox", "wget", "-q", "-O", "-", "http://www/"); out != testdata.BusyboxIndexContent {
		t.Errorf("wget by --link alias: %q", out)
	}
	// The published port on the host's loopback works from another
	// container too, through the gateway (hairpin NAT).
	gw := strings.TrimSpace(e.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}", "web"))
	if out := e.ok("run", "--rm", "busybox", "wget", "-q", "-O", "-", fmt.Sprintf("http://%s:%d/", gw, port)); out != testdata.BusyboxIndexContent {
		t.Errorf("wget from another container through the published port: %q", out)
	}

	// A port already taken: a clear error, exit 125, no container left.
	before := e.ok("ps", "-aq")
	e.fail(125, "port is already allocated", runArgs([]string{"-d", "-p", fmt.Sprintf("%d:80", port)}, httpd...)...)
	if after := e.ok("ps", "-aq"); after != before {
		t.Errorf("a failed run left a container: %q, before %q", after, before)
	}
	e.ok("rm", "-f", "web")
}

func TestPublishAllAndBadInput(t *testing.T) {
	e := withBusybox(t)
	e.ok(runArgs([]string{"-d", "--name", "pa", "-P", "--expose", "80"}, httpd...)...)
	out := e.ok("port", "pa", "80/tcp")
	m := regexp.MustCompile(`^0\.0\.0\.0:(\d+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("port pa 80/tcp: %q", out)
	}
	if got := httpGet(t, "http://127.0.0.1:"+m[1]+"/"); got != testdata.BusyboxIndexContent {
		t.Errorf("GET on the -P port: %q", got)
	}
	e.ok("rm", "-f", "pa")

	before := e.containerDirs()
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-p", "abc", "busybox", "true"}, "invalid containerPort: abc"},
		{[]string{"-p", "70000:80", "busybox", "true"}, "invalid hostPort: 70000"},
		{[]string{"-p", "1.2.3:80:80", "busybox", "true"}, "invalid IP address"},
		{[]string{"--net", "nosuchnet", "busybox", "true"}, "network nosuchnet not found"},
		{[]string{"--net", "container:nosuch", "busybox", "true"}, "No such container: nosuch"},
		{[]string{"--dns", "notanip", "busybox", "true"}, "notanip is not an ip address"},
		{[]string{"--add-host", "nocolon", "busybox", "true"}, "bad format for add-host"},
		{[]string{"--link", "nosuch:alias", "busybox", "true"}, "could not get container for nosuch"},
		{[]string{"--mac-address", "zz", "busybox", "true"}, "zz is not a valid mac address"},
		{[]string{"--ip", "172.29.9.9", "busybox", "true"}, "user specified IP address is supported on user defined networks only"},
	} {
		_, errOut, code := e.fusebox(append([]string{"run"}, c.args...)...)
		if code != 125 || !strings.Contains(errOut, c.msg) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("run %v: exit %d, stderr %q; want 125 and one line with %q", c.args, code, errOut, c.msg)
		}
	}
	if after := e.containerDirs(); len(after) != len(before) {
		t.Errorf("bad input left containers: %v", after)
	}
}

func TestNetworkModes(t *testing.T) {
	e := withBusybox(t)
	// none: only lo.
	if out := e.ok("run", "--rm", "--net", "none", "busybox", "ls", "/sys/class/net"); out != "lo\n" {
		t.Errorf("--net=none interfaces: %q", out)
	}
	// default bridge: lo and eth0.
	if out := e.ok("run", "--rm", "busybox", "ls", "/sys/class/net"); out != "eth0\nlo\n" {
		t.Errorf("default network interfaces: %q", out)
	}
	// host: the host's interfaces, those there before the run and after
	// (other packages' tests add and remove veths meanwhile).
	hostIfs := func() map[string]bool {
		ents, err := os.ReadDir("/sys/class/net")
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, ent := range ents {
			names[ent.Name()] = true
		}
		return names
	}
	before := hostIfs()
	out := e.ok("run", "--rm", "--net", "host", "busybox", "ls", "/sys/class/net")
	after := hostIfs()
	for name := range before {
		if after[name] && !strings.Contains(out, name+"\n") {
			t.Errorf("--net=host does not see %s: %q", name, out)
		}
	}
	// container:NAME shares the netns: a server on its loopback is reachable.
	e.ok("run", "-d", "--name", "srv", "busybox", "busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/var/www")
	var got string
	for i := 0; i < 50; i++ {
		got, _, _ = e.fusebox("run", "--rm", "--net", "container:srv", "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/")
		if got == testdata.BusyboxIndexContent {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != testdata.BusyboxIndexContent {
		t.Errorf("container:srv loopback: %q", got)
	}
	srvIP := e.ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv")
	if out := e.ok("run", "--rm", "--net", "container:srv", "busybox", "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"); out != srvIP {
		t.Errorf("container:srv sees address %q, srv has %q", out, srvIP)
	}
	// --dns, --dns-search, --add-host land in the files.
	out = e.ok("run", "--rm", "--dns", "10.1.2.3", "--dns-search", "example.test", "--dns-option", "ndots:2",
		"--add-host", "db:10.9.8.7", "busybox", "cat", "/etc/resolv.conf", "/etc/hosts")
	for _, want := range []string{"nameserver 10.1.2.3", "search example.test", "options ndots:2", "10.9.8.7\tdb"} {
		if !strings.Contains(out, want) {
			t.Errorf("resolv.conf and hosts lack %q:\n%s", want, out)
		}
	}
	e.ok("rm", "-f", "srv")
}

func TestUserNetwork(t *testing.T) {
	e := withBusybox(t)
	id := strings.TrimSpace(e.ok("network", "create", "--subnet", "10.213.250.0/24", "appnet"))
	if len(id) != 64 {
		t.Fatalf("network create printed %q", id)
	}
	ls := e.ok("network", "ls")
	if !strings.HasPrefix(ls, "NETWORK ID") || !regexp.MustCompile(`(?m)^[0-9a-f]{12}\s+appnet\s+bridge\s+local$`).MatchString(ls) ||
		!regexp.MustCompile(`(?m)^[0-9a-f]{12}\s+bridge\s+bridge\s+local$`).MatchString(ls) {
		t.Errorf("network ls:\n%s", ls)
	}
	if out := e.ok("network", "ls", "-q", "--no-trunc", "-f", "name=appnet"); out != id+"\n" {
		t.Errorf("network ls -q --no-trunc: %q", out)
	}
	if out := e.ok("network", "ls", "--format", "{{.Name}}/{{.Driver}}", "-f", "name=appnet"); out != "appnet/bridge\n" {
		t.Errorf("network ls --format: %q", out)
	}
	e.fail(1, "network with name appnet already exists", "network", "create", "appnet")
	e.ok(runArgs([]string{"-d", "--name", "api", "--net", "appnet", "--ip", "10.213.250.77", "--mac-address", "02:42:0a:d5:fa:4d"}, httpd...)...)
	if out := e.ok("inspect", "-f", `{{(index .NetworkSettings.Networks "appnet").IPAddress}} {{(index .NetworkSettings.Networks "appnet").MacAddress}}`, "api"); out != "10.213.250.77 02:42:0a:d5:fa:4d\n" {
		t.Errorf("--ip and --mac-address: %q", out)
	}
	// By name on the user network.
	if out := e.ok("run", "--rm", "--net", "appnet", "busybox", "wget", "-q", "-O", "-", "http://api/"); out != testdata.BusyboxIndexContent {
		t.Errorf("wget by name on appnet: %q", out)
	}
	insp := e.ok("network", "inspect", "appnet")
	if !strings.Contains(insp, `"10.213.250.0/24"`) || !strings.Contains(insp, `"Name": "api"`) {
		t.Errorf("network inspect:\n%s", insp)
	}
	// connect/disconnect a container on the default bridge.
	e.ok("run", "-d", "--name", "side", "busybox", "sleep", "600")
	e.ok("network", "connect", "appnet", "side")
	if out := e.ok("exec", "side", "wget", "-q", "-O", "-", "http://api/"); out != testdata.BusyboxIndexContent {
		t.Errorf("wget after connect: %q", out)
	}
	if out := e.ok("exec", "side", "ls", "/sys/class/net"); out != "eth0\neth1\nlo\n" {
		t.Errorf("after connect: %q", out)
	}
	e.ok("network", "disconnect", "appnet", "side")
	if out := e.ok("exec", "side", "ls", "/sys/class/net"); out != "eth0\nlo\n" {
		t.Errorf("after disconnect: %q", out)
	}
	e.fail(1, "has active endpoints", "network", "rm", "appnet")
	e.fail(1, "bridge is a pre-defined network and cannot be removed", "network", "rm", "bridge")
	e.ok("rm", "-f", "api", "side")
	e.ok("network", "rm", "appnet")
	e.fail(1, "network appnet not found", "network", "inspect", "appnet")
	e.ok("network", "create", "spare")
	if out := e.ok("network", "prune", "-f"); !strings.Contains(out, "spare") {
		t.Errorf("network prune: %q", out)
	}
}

// netCounts are what a daemon's containers leave in the host: veths on its
// bridge, iptables rules naming its subnet, IPAM leases and netns files.
// Each is limited to this daemon's, so that daemons of other tests running
// at the same time do not change them.
type netCounts struct{ veths, rules, leases, netns int }

func countNet(t *testing.T, e *env) netCounts {
	t.Helper()
	var c netCounts
	bridge := strings.TrimSpace(e.ok("network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}}`, "bridge"))
	subnet := strings.TrimSpace(e.ok("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "bridge"))
	p, err := netip.ParsePrefix(subnet)
	if err != nil || bridge == "" {
		t.Fatalf("default network: bridge %q subnet %q", bridge, subnet)
	}
	out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).Output()
	if err != nil {
		t.Fatal(err)
	}
	c.veths = strings.Count(string(out), "\n")
	a := p.Addr().As4()
	prefix := fmt.Sprintf("%d.%d.%d.", a[0], a[1], a[2])
	for _, table := range []string{"filter", "nat"} {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, prefix) && !strings.Contains(l, prefix+"0/") {
				c.rules++
			}
		}
	}
	_ = filepath.WalkDir(filepath.Join(e.root, "network", "ipam"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && net.ParseIP(d.Name()) != nil {
			c.leases++
		}
		return nil
	})
	// The daemon's netns directory for a root other than the default:
	// /run/fusebox/netns-<fnv32a of the root> (daemon.networkConfig).
	h := fnv.New32a()
	h.Write([]byte(e.root))
	ents, _ := os.ReadDir(fmt.Sprintf("/run/fusebox/netns-%08x", h.Sum32()))
	c.netns = len(ents)
	// The daemon's spare sandboxes (network.Manager's spares, recorded as
	// sandboxes/spare-*.json, each a netns, a veth and a lease) are not a
	// container's: the counts leave them out.
	spares, _ := filepath.Glob(filepath.Join(e.root, "network", "sandboxes", "spare-*.json"))
	c.netns -= len(spares)
	c.veths -= len(spares)
	c.leases -= len(spares)
	return c
}

// settledNet is countNet once the daemon is idle with no container
// running: the spares it makes are ready, and every sandbox it retires
// after an exit is gone or a spare again (network.Manager.Retire) — no
// netns, veth or lease but the spares'.
func settledNet(t *testing.T, e *env) netCounts {
	t.Helper()
	var c netCounts
	waitFor(t, "no sandbox but the spares", func() bool {
		c = countNet(t, e)
		return c.netns == 0 && c.veths == 0 && c.leases == 0
	})
	return c
}

func TestNetworkNoLeaks(t *testing.T) {
	e := withBusybox(t)
	e.ok("run", "--rm", "busybox", "true") // the bridge and chains exist from here on
	before := settledNet(t, e)
	port := freePort(t)
	for i := 0; i < 50; i++ {
		switch i % 4 {
		case 3:
			// The default network alone: takes the spare, retired after
			// the exit is reported.
			e.ok("run", "--rm", "busybox", "true")
		case 0:
			e.ok("run", "--rm", "-p", strconv.Itoa(port)+":80", "busybox", "true")
		case 1:
			e.ok("run", "-d", "--name", "cyc", "-p", strconv.Itoa(port)+":80", "busybox", "sleep", "600")
			e.ok("stop", "-t", "0", "cyc")
			e.ok("rm", "cyc")
		case 2:
			// Exits by itself: the daemon tears down on the shim's report.
			e.ok("run", "-d", "--name", "cyc", "-p", strconv.Itoa(port)+":80", "busybox", "true")
			e.ok("wait", "cyc")
			e.ok("rm", "cyc")
		}
	}
	e.ok("run", "--rm", "busybox", "true")
	if after := settledNet(t, e); after != before {
		t.Errorf("after 50 cycles: %+v, before %+v", after, before)
	}
}

func TestDockerCLINetwork(t *testing.T) {
	e := withBusybox(t)
	port := freePort(t)
	id := strings.TrimSpace(e.dockerOK(runArgs([]string{"-d", "--name", "dweb", "-p", fmt.Sprintf("127.0.0.1:%d:80", port)}, httpd...)...))
	if len(id) != 64 {
		t.Fatalf("docker run -d printed %q", id)
	}
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != testdata.BusyboxIndexContent {
		t.Errorf("GET on the port docker published: %q", got)
	}
	if out := e.dockerOK("port", "dweb"); out != fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", port) {
		t.Errorf("docker port: %q", out)
	}
	if out := e.dockerOK("port", "dweb", "80/tcp"); out != fmt.Sprintf("127.0.0.1:%d\n", port) {
		t.Errorf("docker port dweb 80/tcp: %q", out)
	}
	if out := e.dockerOK("ps"); !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d->80/tcp", port)) {
		t.Errorf("docker ps PORTS:\n%s", out)
	}
	if out := e.dockerOK("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "dweb"); net.ParseIP(strings.TrimSpace(out)) == nil {
		t.Errorf("docker inspect IPAddress: %q", out)
	}
	nid := strings.TrimSpace(e.dockerOK("network", "create", "dnet"))
	ls := e.dockerOK("network", "ls")
	if !strings.Contains(ls, nid[:12]) || !regexp.MustCompile(`(?m)^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$`).MatchString(ls) {
		t.Errorf("docker network ls:\n%s", ls)
	}
	if out := e.dockerOK("network", "inspect", "-f", "{{.Name}} {{.Driver}}", "dnet"); out != "dnet bridge\n" {
		t.Errorf("docker network inspect: %q", out)
	}
	e.dockerOK("run", "--rm", "--network", "dnet", "busybox", "true")
	e.dockerOK("network", "rm", "dnet")
	if _, errOut, code := e.docker("network", "rm", "dnet"); code == 0 || !strings.Contains(errOut, "network dnet not found") {
		t.Errorf("docker network rm of a removed network: exit %d, %q", code, errOut)
	}
	if _, errOut, code := e.docker("run", "--rm", "--network", "nosuch", "busybox", "true"); code != 125 || !strings.Contains(errOut, "network nosuch not found") {
		t.Errorf("docker run --network nosuch: exit %d, %q", code, errOut)
	}
	e.dockerOK("rm", "-f", "dweb")
}

// A daemon killed while containers run leaves their veths, rules, leases
// and netns behind; the next daemon removes them at start-up.
func TestDaemonRestartCleansNetwork(t *testing.T) {
	e := withBusybox(t)
	e.ok("run", "--rm", "busybox", "true")
	before := settledNet(t, e)
	port := freePort(t)
	e.ok("run", "-d", "--name", "ra", "-p", strconv.Itoa(port)+":80", "busybox", "sleep", "600")
	e.ok("run", "-d", "--name", "rb", "--net", "none", "busybox", "sleep", "600")
	if during := countNet(t, e); during.veths != before.veths+1 || during.leases != before.leases+1 || during.netns != before.netns+2 {
		t.Errorf("while running: %+v, before %+v", during, before)
	}
	pid := e.daemonPID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
	e.ok("ps") // starts the next daemon
	spares, _ := filepath.Glob(filepath.Join(e.root, "network", "sandboxes", "*.json"))
	if after := countNet(t, e); after.netns != 0 || after.veths != 0 || after.leases != 0 || len(spares) != 0 {
		t.Errorf("after the restart: %+v and records %v, want no netns, veth, lease or sandbox", after, spares)
	}
	e.ok("run", "--rm", "busybox", "true") // and its spare
	if after := settledNet(t, e); after != before {
		t.Errorf("after the restart: %+v, before %+v", after, before)
	}
	// The port is free again.
	e.ok("run", "-d", "--name", "rc", "-p", strconv.Itoa(port)+":80", "busybox", "sleep", "600")
	e.ok("rm", "-f", "ra", "rb", "rc")
}
