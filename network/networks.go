package network

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// confList is the CNI configuration of a bridge network for one
// attachment: bridge (veth, address from host-local, hairpin so a container
// reaches its own published ports) and, only when the container publishes
// ports, portmap (DNAT; snat so that 127.0.0.1 and hairpin connections work:
// it also sets route_localnet on the bridge). Masquerade and forwarding are
// the network's own rules (networkRules), not per-container plugin work, so
// ipMasq is off and the firewall plugin is not used: an ADD is two execs,
// bridge and host-local. libcni caches the list given at ADD and detach
// uses that cached list at DEL, so a container's DEL runs portmap exactly
// when its ADD did.
func (m *Manager) confList(n Network, ports bool) (*libcni.NetworkConfigList, error) {
	routes := []map[string]string{}
	if !n.Internal {
		routes = append(routes, map[string]string{"dst": "0.0.0.0/0"})
	}
	plugins := []any{
		map[string]any{
			"type":         "bridge",
			"bridge":       n.Bridge,
			"isGateway":    true,
			"ipMasq":       false,
			"hairpinMode":  true,
			"capabilities": map[string]bool{"mac": true, "ips": true},
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": n.Subnet.String(), "gateway": n.Gateway.String()}}},
				"routes":  routes,
				"dataDir": filepath.Join(m.root, "ipam"),
			},
		},
	}
	if ports {
		plugins = append(plugins, map[string]any{
			"type":         "portmap",
			"capabilities": map[string]bool{"portMappings": true},
			"snat":         true,
		})
	}
	conf := map[string]any{"cniVersion": cniVersion, "name": n.Name, "plugins": plugins}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	l, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("cni config of network %s: %w", n.Name, err)
	}
	return l, nil
}

// lookupNetwork finds a network by name, full id or unique id prefix, as
// Docker does.
func (m *Manager) lookupNetwork(ctx context.Context, ref string) (Network, error) {
	nets, err := m.store.Networks(ctx)
	if err != nil {
		return Network{}, err
	}
	for _, n := range nets {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
	}
	var found []Network
	for _, n := range nets {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			found = append(found, n)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	if len(found) > 1 {
		return Network{}, fmt.Errorf("network %s is ambiguous (%d matches found): %w", ref, len(found), ErrNetworkNotFound)
	}
	return Network{}, fmt.Errorf("network %s not found: %w", ref, ErrNetworkNotFound)
}

// Network returns the record of a network by name, id or id prefix.
func (m *Manager) Network(ctx context.Context, ref string) (Network, error) {
	return m.lookupNetwork(ctx, ref)
}

// Networks returns every network record, predefined ones included, sorted
// by name, for `network ls`.
func (m *Manager) Networks(ctx context.Context) ([]Network, error) {
	nets, err := m.store.Networks(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	return nets, nil
}

// Endpoint is one container on a network, for `network inspect`'s
// Containers section.
type Endpoint struct {
	ContainerID string
	Name        string
	Attachment
}

// Endpoints lists the containers attached to a network (by name).
func (m *Manager) Endpoints(network string) []Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Endpoint
	for _, sb := range m.sandboxes {
		if i, ok := sb.attachment(network); ok {
			out = append(out, Endpoint{ContainerID: sb.ID, Name: sb.Name, Attachment: sb.Attachments[i]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CreateOptions are `network create`'s flags.
type CreateOptions struct {
	Name     string
	Driver   string       // "" or "bridge"; nothing else is supported
	Subnet   netip.Prefix // zero: allocated from the pool
	Gateway  netip.Addr   // zero: the subnet's first address
	Internal bool
	Labels   map[string]string
	Options  map[string]string
}

// ErrInvalidNetwork is wrapped by CreateNetwork's errors about its input.
var ErrInvalidNetwork = errors.New("invalid network")

// CreateNetwork records a new user-defined bridge network. Its bridge
// interface appears on the first container's setup (the bridge plugin makes
// it) and goes on RemoveNetwork.
func (m *Manager) CreateNetwork(ctx context.Context, opts CreateOptions) (Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if opts.Driver != "" && opts.Driver != "bridge" {
		return Network{}, fmt.Errorf("plugin %q not found: only the bridge driver is supported: %w", opts.Driver, ErrInvalidNetwork)
	}
	switch opts.Name {
	case DefaultNetwork, HostNetwork, NoneNetwork:
		return Network{}, fmt.Errorf("%s is a pre-defined network and cannot be created: %w", opts.Name, ErrPredefined)
	}
	if !validName(opts.Name) || opts.Name == loopbackNet {
		return Network{}, fmt.Errorf("invalid network name %q: %w", opts.Name, ErrInvalidNetwork)
	}
	nets, err := m.store.Networks(ctx)
	if err != nil {
		return Network{}, err
	}
	for _, n := range nets {
		if n.Name == opts.Name {
			return Network{}, fmt.Errorf("network with name %s already exists: %w", opts.Name, ErrNetworkExists)
		}
	}
	n := Network{ID: newID(), Name: opts.Name, Driver: "bridge", Internal: opts.Internal,
		Labels: opts.Labels, Options: opts.Options, Created: time.Now().UTC()}
	n.Bridge = userBridgePrefix + n.ID[:12]
	hostNets := hostPrefixes()
	if opts.Subnet.IsValid() {
		if !opts.Subnet.Addr().Is4() || opts.Subnet.Bits() > 30 {
			return Network{}, fmt.Errorf("invalid subnet %s: an IPv4 subnet of /30 or larger is needed: %w", opts.Subnet, ErrInvalidNetwork)
		}
		n.Subnet = opts.Subnet.Masked()
		n.UserSubnet = true
		for _, o := range nets {
			if o.Subnet.IsValid() && o.Subnet.Overlaps(n.Subnet) {
				return Network{}, fmt.Errorf("invalid pool request: %w", ErrPoolOverlap)
			}
		}
	} else {
		n.Subnet, err = allocateSubnet(nets, hostNets)
		if err != nil {
			return Network{}, err
		}
	}
	n.Gateway = n.Subnet.Addr().Next()
	if opts.Gateway.IsValid() {
		if !n.Subnet.Contains(opts.Gateway) || opts.Gateway == n.Subnet.Addr() {
			return Network{}, fmt.Errorf("no matching subnet for gateway %s: %w", opts.Gateway, ErrInvalidNetwork)
		}
		n.Gateway = opts.Gateway
	}
	if err := ensureNetworkRules([]Network{n}, m.defaultBridge); err != nil {
		removeNetworkRules(n, m.defaultBridge)
		return Network{}, fmt.Errorf("create network %s: %w", n.Name, err)
	}
	if err := m.store.PutNetwork(ctx, n); err != nil {
		removeNetworkRules(n, m.defaultBridge)
		return Network{}, err
	}
	return n, nil
}

// subnetPool is where user networks get their subnets when none is given:
// two /16s next to the default one, then /24s of 10.213/16.
func subnetPool() []netip.Prefix {
	pool := []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16"), netip.MustParsePrefix("172.31.0.0/16")}
	for i := range 256 {
		pool = append(pool, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(i), 0}), 24))
	}
	return pool
}

func allocateSubnet(nets []Network, host []netip.Prefix) (netip.Prefix, error) {
next:
	for _, p := range subnetPool() {
		for _, n := range nets {
			if n.Subnet.IsValid() && n.Subnet.Overlaps(p) {
				continue next
			}
		}
		for _, h := range host {
			if h.Overlaps(p) {
				continue next
			}
		}
		return p, nil
	}
	return netip.Prefix{}, errors.New("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
}

// hostPrefixes are the host's IPv4 routes and interface networks (not the
// default route), which a new subnet must not overlap.
func hostPrefixes() []netip.Prefix {
	var out []netip.Prefix
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
				out = append(out, p.Masked())
			}
		}
	}
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 {
			continue
		}
		dst, mask := hexLE(fl[1]), hexLE(fl[7])
		if mask == [4]byte{} {
			continue
		}
		ones, _ := net.IPv4Mask(mask[0], mask[1], mask[2], mask[3]).Size()
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(dst), ones))
	}
	return out
}

// hexLE decodes /proc/net/route's little-endian hex addresses.
func hexLE(s string) [4]byte {
	var b [4]byte
	var v uint32
	fmt.Sscanf(s, "%x", &v)
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return b
}

// RemoveNetwork deletes a user-defined network: its record, its rules
// (isolation, forwarding, masquerade), its bridge interface and its lease
// directory. A network with containers attached is
// refused, as are the predefined ones.
func (m *Manager) RemoveNetwork(ctx context.Context, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupNetwork(ctx, ref)
	if err != nil {
		return err
	}
	switch n.Name {
	case DefaultNetwork, HostNetwork, NoneNetwork:
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, ErrPredefined)
	}
	for _, sb := range m.sandboxes {
		if _, ok := sb.attachment(n.Name); ok {
			return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", n.Name, n.ID, ErrNetworkInUse)
		}
	}
	if err := removeNetworkRules(n, m.defaultBridge); err != nil {
		return err
	}
	if err := deleteLink(n.Bridge); err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	if err := os.RemoveAll(filepath.Join(m.root, "ipam", n.Name)); err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	return m.store.DeleteNetwork(ctx, n.ID)
}

// deleteLink removes a host interface if it exists. iproute2 is one of
// the project's dependencies; the bridge plugin never removes bridges.
func deleteLink(name string) error {
	if name == "" {
		return nil
	}
	if _, err := net.InterfaceByName(name); err != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "delete", "dev", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link delete %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Release removes what the manager made on the host outside its root, for
// a daemon that goes away for good (one on a private root, such as a
// test's): the bridges of its networks with their rules, and its
// netns directory. Records stay, so a later New on the same root works as
// before (bridges come back with the first container). It refuses while any
// sandbox exists. The system daemon does not call it: its bridge outlives
// restarts, as docker0 does.
func (m *Manager) Release(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sandboxes) > 0 {
		return fmt.Errorf("release: %d sandboxes remain: %w", len(m.sandboxes), ErrNetworkInUse)
	}
	nets, err := m.store.Networks(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range nets {
		if n.Driver != "bridge" {
			continue
		}
		if err := removeNetworkRules(n, m.defaultBridge); err != nil {
			errs = append(errs, err)
		}
		if err := deleteLink(n.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	if err := releaseNetnsDir(m.netnsDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
