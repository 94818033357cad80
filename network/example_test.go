package network_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fusebox/fusebox/network"
)

// The daemon's side of `run -d -p 5000:5000 --dns 10.0.0.2 --add-host db:10.0.0.5 IMAGE`
// and of the container's stop. (Not run: it needs root and makes a bridge.)
func Example() {
	ctx := context.Background()
	root := "/var/lib/fusebox"

	// At daemon start-up.
	m, err := network.New(ctx, network.Config{Root: filepath.Join(root, "network")})
	if err != nil {
		panic(err)
	}
	liveIDs := map[string]bool{} // containers whose shims are still running
	if err := m.Cleanup(ctx, liveIDs); err != nil {
		fmt.Println("network cleanup:", err)
	}

	// Parse the flags: clear errors before anything exists.
	mode, err := network.ParseMode("bridge")
	if err != nil {
		panic(err)
	}
	ports, err := network.ParsePublish("5000:5000")
	if err != nil {
		panic(err) // e.g. "invalid containerPort: abc"
	}
	exposed, _ := network.ParseExpose("5000/tcp") // image EXPOSE and --expose, for -P

	// Before the container starts.
	id := "0123456789ab"
	sb, err := m.Setup(ctx, network.Request{ID: id, Name: "web", Hostname: id[:12], Mode: mode, Ports: ports})
	if err != nil {
		panic(err) // errors.Is(err, network.ErrPortAllocated) for a taken port
	}
	hosts, _ := m.Hosts(ctx, id, network.HostsOptions{ExtraHosts: []string{"db:10.0.0.5"}})
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	resolv, _ := network.ResolvConf(hostResolv, mode.Kind, network.DNSOptions{Servers: []string{"10.0.0.2"}})
	dir := filepath.Join(root, "containers", id)
	network.WriteInPlace(filepath.Join(dir, "hosts"), hosts)
	network.WriteInPlace(filepath.Join(dir, "resolv.conf"), resolv)
	// ... start the shim with sb.NetnsPath as the network namespace path, and
	// bind-mount the two files on /etc/hosts and /etc/resolv.conf ...
	for _, other := range m.Neighbours(id) {
		_ = other // rewrite the hosts file of each neighbour the same way
	}

	// `port web` and `ps`.
	lines, _ := network.PortLines(sb.Ports, "")
	fmt.Println(lines)                                  // [5000/tcp -> 0.0.0.0:5000]
	fmt.Println(network.PortsColumn(sb.Ports, exposed)) // 0.0.0.0:5000->5000/tcp
	_ = network.APIPorts(sb.Ports, exposed)             // NetworkSettings.Ports of inspect

	// After the container's processes are gone.
	if err := m.Teardown(ctx, id); err != nil {
		fmt.Println("network teardown:", err)
	}
}
