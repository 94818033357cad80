package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	apinet "github.com/moby/moby/api/types/network"

	"github.com/fusebox/fusebox/api"
	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/launcher"
	"github.com/fusebox/fusebox/network"
)

// networkBucket is the store bucket of network records, keyed by ID.
const networkBucket = "networks"

// bucketNetworkStore keeps the network package's records in the daemon's
// Badger store, next to the container records, so that one backup of the
// store holds both.
type bucketNetworkStore struct{ b *cas.Bucket }

var _ network.Store = bucketNetworkStore{}

func (s bucketNetworkStore) PutNetwork(ctx context.Context, n network.Network) error {
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode network %s: %w", n.Name, err)
	}
	return s.b.Put(context.WithoutCancel(ctx), n.ID, b)
}

func (s bucketNetworkStore) DeleteNetwork(ctx context.Context, id string) error {
	return s.b.Delete(context.WithoutCancel(ctx), id)
}

func (s bucketNetworkStore) Networks(ctx context.Context) ([]network.Network, error) {
	kvs, err := s.b.List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]network.Network, 0, len(kvs))
	for _, kv := range kvs {
		var n network.Network
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			return nil, fmt.Errorf("network record %s: %w", kv.Key, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// networkConfig is the network manager's configuration for this daemon.
// The system daemon (DefaultRoot) gets the package defaults: bridge
// fusebox0, 172.29.0.0/16, netns files in /run/fusebox/netns. A daemon on
// any other root (tests, a second daemon) gets its own bridge, subnet and
// netns directory, derived from its root: each manager owns its IPAM
// leases and cleans its netns directory at start-up, so two daemons sharing
// those would hand out the same addresses and remove each other's
// namespaces.
func networkConfig(root string, store network.Store) network.Config {
	cfg := network.Config{Root: filepath.Join(root, "network"), Store: store, Spare: true}
	if root == api.DefaultRoot {
		return cfg
	}
	h := fnv.New32a()
	h.Write([]byte(root))
	sum := h.Sum32()
	tag := fmt.Sprintf("%08x", sum)
	cfg.NetnsDir = filepath.Join(filepath.Dir(network.DefaultNetnsDir), "netns-"+tag)
	cfg.DefaultBridge = "fbx" + tag
	cfg.DefaultSubnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(220 + sum%32), byte(sum >> 8), 0}), 24)
	return cfg
}

// initNetwork opens the network manager and tears down what containers of
// an earlier daemon left. It runs before the containers are loaded: none
// of them can still be running (their rootfs was served by that daemon,
// see initContainers), so every sandbox, veth, rule and lease on record or
// on disk is a leftover. Without the CNI plugins the daemon still serves
// everything else; creating a container then fails with the reason.
func (d *Daemon) initNetwork(ctx context.Context) error {
	m, err := network.New(ctx, networkConfig(d.root, bucketNetworkStore{d.store.Bucket(networkBucket)}))
	if err != nil {
		d.log.Warn("networking unavailable", "err", err)
		d.netErr = err
		return nil
	}
	d.net = m
	if err := m.Cleanup(ctx, nil); err != nil {
		d.log.Warn("network cleanup at start-up", "err", err)
	}
	// Registered before the containers' shutdown, so it runs after it.
	d.OnClose(func() error {
		if err := m.Close(context.Background()); err != nil {
			d.log.Warn("network shutdown", "err", err)
		}
		if d.root != api.DefaultRoot {
			if err := m.Release(context.Background()); err != nil {
				d.log.Warn("release network resources", "err", err)
			}
		}
		return nil
	})
	return nil
}

func init() {
	RegisterErrorStatus(network.ErrNetworkNotFound, 404)
	RegisterErrorStatus(network.ErrNoSandbox, 404)
	RegisterErrorStatus(network.ErrNotConnected, 404)
	RegisterErrorStatus(network.ErrNetworkExists, 409)
	RegisterErrorStatus(network.ErrNetworkInUse, 403)
	RegisterErrorStatus(network.ErrPredefined, 403)
	RegisterErrorStatus(network.ErrConnected, 403)
	RegisterErrorStatus(network.ErrPoolOverlap, 403)
	RegisterErrorStatus(network.ErrInvalidPort, 400)
	RegisterErrorStatus(network.ErrInvalidMode, 400)
	RegisterErrorStatus(network.ErrInvalidHost, 400)
	RegisterErrorStatus(network.ErrInvalidDNS, 400)
	RegisterErrorStatus(network.ErrInvalidAddress, 400)
	RegisterErrorStatus(network.ErrInvalidNetwork, 400)
	RegisterErrorStatus(network.ErrConflict, 400)
}

// netOptions are a container's network settings, parsed from its record.
type netOptions struct {
	mode    network.Mode
	ports   []network.PortBinding
	exposed []network.ExposedPort
	ep      network.EndpointOptions
	dns     network.DNSOptions
	extra   []string
	links   []network.Link
}

// parseNetOptions reads the network half of a create request: --net, -p,
// -P with EXPOSE and --expose, --dns*, --add-host, --link, and --ip and
// --mac-address from the endpoint settings. It checks everything it can
// without making anything, so that create fails cleanly on bad input.
func (d *Daemon) parseNetOptions(ctx context.Context, cfg *container.Config, hc *container.HostConfig, eps map[string]*apinet.EndpointSettings) (netOptions, error) {
	var o netOptions
	mode, err := network.ParseMode(string(hc.NetworkMode))
	if err != nil {
		return o, BadParameterf("%v", err)
	}
	o.mode = mode
	var primary network.Network
	if mode.Kind == network.KindBridge {
		if primary, err = d.net.Network(ctx, mode.Network); err != nil {
			// 400, not 404: the docker CLI takes a 404 from create for a
			// missing image and would try to pull it.
			return o, BadParameterf("network %s not found", mode.Network)
		}
	}
	for p := range cfg.ExposedPorts {
		o.exposed = append(o.exposed, network.ExposedPort{Port: p.Num(), Proto: string(p.Proto())})
	}
	for p, bs := range hc.PortBindings {
		if len(bs) == 0 {
			bs = []apinet.PortBinding{{}}
		}
		for _, b := range bs {
			ip := ""
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				ip = b.HostIP.String()
			}
			got, err := network.ParseBinding(p.String(), ip, b.HostPort)
			if err != nil {
				return o, BadParameterf("%v", err)
			}
			o.ports = append(o.ports, got...)
		}
	}
	if hc.PublishAllPorts {
		o.ports = network.PublishAll(o.exposed, o.ports)
	}
	for _, s := range hc.DNS {
		o.dns.Servers = append(o.dns.Servers, s.String())
	}
	o.dns.Search, o.dns.Options = hc.DNSSearch, hc.DNSOptions
	if _, err := network.ResolvConf(nil, mode.Kind, o.dns); err != nil {
		return o, BadParameterf("%v", err)
	}
	for _, h := range hc.ExtraHosts {
		if _, err := network.ParseExtraHost(h); err != nil {
			return o, BadParameterf("%v", err)
		}
	}
	o.extra = hc.ExtraHosts
	for _, l := range hc.Links {
		name, alias, _ := strings.Cut(l, ":")
		name = strings.TrimPrefix(name, "/")
		alias = filepath.Base(alias)
		if alias == "." || alias == "/" {
			alias = ""
		}
		other, err := d.containers.get(name)
		if err != nil {
			return o, BadParameterf("could not get container for %s", name)
		}
		rec := other.snapshot()
		if alias == "" {
			alias = rec.Name
		}
		o.links = append(o.links, network.Link{ID: rec.ID, Name: rec.Name, Alias: alias})
	}
	if ep := endpointFor(eps, mode); ep != nil {
		o.ep.Aliases = ep.Aliases
		if len(ep.MacAddress) > 0 {
			o.ep.MAC = ep.MacAddress.String()
		}
		if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
			o.ep.IP = ep.IPAMConfig.IPv4Address.String()
		}
	}
	if (o.ep.IP != "" || o.ep.MAC != "") && mode.Kind != network.KindBridge {
		return o, BadParameterf("conflicting options: mac-address or ip and the network mode")
	}
	if mode.Kind == network.KindBridge {
		if err := network.CheckEndpoint(primary, o.ep); err != nil {
			return o, BadParameterf("%s", networkMessage(err))
		}
	}
	if mode.Kind == network.KindContainer {
		if len(o.ports) > 0 {
			return o, BadParameterf("conflicting options: port publishing and the container type network mode")
		}
		if _, err := d.containers.get(mode.Container); err != nil {
			return o, BadParameterf("No such container: %s", mode.Container)
		}
	}
	if mode.Kind == network.KindHost {
		o.ports = nil // Docker discards published ports in host mode.
	}
	return o, nil
}

// endpointFor picks the endpoint settings of the container's own network
// from a create request's NetworkingConfig (the docker CLI keys them by the
// --net value, "default" included).
func endpointFor(eps map[string]*apinet.EndpointSettings, mode network.Mode) *apinet.EndpointSettings {
	for _, k := range []string{mode.String(), mode.Network, "default", "bridge"} {
		if ep, ok := eps[k]; ok && ep != nil {
			return ep
		}
	}
	return nil
}

// checkNetworkCreate validates the network options of a create request;
// it is called before anything of the container exists.
func (d *Daemon) checkNetworkCreate(ctx context.Context, cfg *container.Config, hc *container.HostConfig, eps map[string]*apinet.EndpointSettings) error {
	if d.net == nil {
		return fmt.Errorf("networking is not available: %w", d.netErr)
	}
	o, err := d.parseNetOptions(ctx, cfg, hc, eps)
	if err != nil {
		return err
	}
	return d.net.CheckPorts("", o.ports)
}

// netStart is what a container's start needs from its network setup.
type netStart struct {
	netns         string // launcher.Options.NetNS
	hosts, resolv []byte
}

// setupNetwork makes the container's network stack before its shim starts
// and returns the netns to join and its /etc/hosts and /etc/resolv.conf.
// On failure nothing is left behind.
func (d *Daemon) setupNetwork(ctx context.Context, c *ctr) (ns netStart, err error) {
	if d.net == nil {
		return ns, fmt.Errorf("networking is not available: %w", d.netErr)
	}
	rec := c.snapshot()
	o, err := d.parseNetOptions(ctx, rec.Config, rec.HostConfig, rec.Endpoints)
	if err != nil {
		return ns, err
	}
	req := network.Request{
		ID: rec.ID, Name: rec.Name, Hostname: rec.Config.Hostname, Mode: o.mode,
		Ports: o.ports, MAC: o.ep.MAC, IP: o.ep.IP, Aliases: o.ep.Aliases,
	}
	var other *ctr
	if o.mode.Kind == network.KindContainer {
		other, _ = d.containers.get(o.mode.Container)
		orec := other.snapshot()
		if !other.running() {
			return ns, Conflictf("cannot join network namespace of a non running container: container %s is %s", orec.ID, orec.State.Status)
		}
		osb, err := d.net.Sandbox(orec.ID)
		if err != nil || osb.NetnsPath == "" {
			return ns, Conflictf("cannot join network namespace of container %s: it has none of its own", orec.ID)
		}
		req.ContainerNetns = osb.NetnsPath
	}
	sb, err := d.net.Setup(ctx, req)
	if err != nil {
		if errors.Is(err, network.ErrNetworkNotFound) {
			return ns, NotFoundf("network %s not found", o.mode.Network)
		}
		return ns, err
	}
	defer func() {
		if err != nil {
			d.teardownNetwork(context.WithoutCancel(ctx), rec.ID)
		}
	}()
	// Networks connected while the container was stopped.
	for name, ep := range rec.Endpoints {
		if name == o.mode.String() || name == "default" || name == o.mode.Network || ep == nil || o.mode.Kind != network.KindBridge {
			continue
		}
		if _, err := d.net.Connect(ctx, rec.ID, name, endpointOptions(ep)); err != nil {
			return ns, fmt.Errorf("connect to network %s: %w", name, err)
		}
	}
	ns.netns = sb.NetnsPath
	if o.mode.Kind == network.KindHost {
		ns.netns = launcher.NetNSHost
	}
	if other != nil {
		// container:<x> shares x's files, as in Docker.
		odir := other.dir
		ns.hosts, _ = os.ReadFile(filepath.Join(odir, launcher.HostsFile))
		ns.resolv, _ = os.ReadFile(filepath.Join(odir, launcher.ResolvConfFile))
		return ns, nil
	}
	if ns.hosts, err = d.net.Hosts(ctx, rec.ID, network.HostsOptions{Links: o.links, ExtraHosts: o.extra}); err != nil {
		return ns, err
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	if ns.resolv, err = network.ResolvConf(hostResolv, o.mode.Kind, o.dns); err != nil {
		return ns, err
	}
	d.refreshNeighbours(ctx, rec.ID)
	return ns, nil
}

func endpointOptions(ep *apinet.EndpointSettings) network.EndpointOptions {
	var o network.EndpointOptions
	if ep == nil {
		return o
	}
	o.Aliases = ep.Aliases
	if len(ep.MacAddress) > 0 {
		o.MAC = ep.MacAddress.String()
	}
	if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
		o.IP = ep.IPAMConfig.IPv4Address.String()
	}
	return o
}

// teardownNetwork removes the container's network stack (veths, rules,
// leases, netns) and takes its name out of its neighbours' hosts files;
// the container's processes must be gone. A container only on the default
// network without published ports has no neighbours and nothing that must
// be free at once, so its teardown finishes in the background, after the
// exit is reported (network.Manager.Retire). It is idempotent; failures are
// logged, and the sandbox record stays for the next Teardown or the
// start-up Cleanup.
func (d *Daemon) teardownNetwork(ctx context.Context, id string) {
	if d.net == nil {
		return
	}
	neighbours := d.net.Neighbours(id)
	// A container that could not have changed its namespace leaves it
	// to the next one (network.Manager.Retire).
	recycle := false
	if c, err := d.containers.get(id); err == nil {
		hc := c.snapshot().HostConfig
		recycle = hc != nil && !hc.Privileged && len(hc.CapAdd) == 0
	}
	done := d.net.Retire(context.WithoutCancel(ctx), id, recycle)
	finish := func() {
		if err := <-done; err != nil {
			d.log.Warn("network teardown", "id", id, "err", err)
		}
		for _, n := range neighbours {
			d.rewriteHosts(ctx, n)
		}
	}
	if len(neighbours) == 0 {
		go finish()
		return
	}
	finish()
}

// refreshNeighbours rewrites the hosts files of the containers that share
// a user network with id, after id joined or left one.
func (d *Daemon) refreshNeighbours(ctx context.Context, id string) {
	for _, n := range d.net.Neighbours(id) {
		if n != id {
			d.rewriteHosts(ctx, n)
		}
	}
}

// rewriteHosts writes a running container's /etc/hosts again, in place so
// that its bind mount sees the new content.
func (d *Daemon) rewriteHosts(ctx context.Context, id string) {
	c, err := d.containers.get(id)
	if err != nil || !c.running() {
		return
	}
	rec := c.snapshot()
	o, err := d.parseNetOptions(ctx, rec.Config, rec.HostConfig, rec.Endpoints)
	if err != nil || o.mode.Kind == network.KindContainer || o.mode.Kind == network.KindHost {
		return
	}
	b, err := d.net.Hosts(ctx, id, network.HostsOptions{Links: o.links, ExtraHosts: o.extra})
	if err != nil {
		return
	}
	if err := network.WriteInPlace(filepath.Join(c.dir, launcher.HostsFile), b); err != nil {
		d.log.Warn("rewrite hosts file", "id", id, "err", err)
	}
}

// networkSettings is inspect's NetworkSettings: the sandbox's addresses
// and ports while the container runs, the configured networks otherwise.
func (d *Daemon) networkSettings(rec containerRecord) *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: apinet.PortMap{}, Networks: map[string]*apinet.EndpointSettings{}}
	if d.net == nil {
		return ns
	}
	mode, _ := network.ParseMode(string(rec.HostConfig.NetworkMode))
	var exposed []network.ExposedPort
	for p := range rec.Config.ExposedPorts {
		exposed = append(exposed, network.ExposedPort{Port: p.Num(), Proto: string(p.Proto())})
	}
	sb, err := d.net.Sandbox(rec.ID)
	if err != nil {
		sb = nil
	}
	running := rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused
	if sb != nil && running {
		for k, bs := range network.APIPorts(sb.Ports, exposed) {
			p, err := apinet.ParsePort(k)
			if err != nil {
				continue
			}
			var out []apinet.PortBinding
			for _, b := range bs {
				ip, _ := netip.ParseAddr(b.HostIP)
				out = append(out, apinet.PortBinding{HostIP: ip, HostPort: b.HostPort})
			}
			ns.Ports[p] = out
		}
		for _, a := range sb.Attachments {
			ep := &apinet.EndpointSettings{
				NetworkID: a.NetworkID, EndpointID: a.EndpointID, Gateway: a.Gateway,
				IPAddress: a.Address.Addr(), IPPrefixLen: a.Address.Bits(), Aliases: a.Aliases,
			}
			if hw, err := parseMAC(a.MAC); err == nil {
				ep.MacAddress = hw
			}
			if a.Network != network.DefaultNetwork {
				ep.DNSNames = append([]string{rec.Name, rec.ID[:12]}, a.Aliases...)
			}
			ns.Networks[a.Network] = ep
		}
		if mode.Kind != network.KindBridge {
			ns.Networks[mode.String()] = &apinet.EndpointSettings{}
		}
		return ns
	}
	name := mode.String()
	if mode.Kind == network.KindContainer {
		return ns
	}
	if n, err := d.net.Network(context.Background(), name); err == nil {
		ns.Networks[n.Name] = &apinet.EndpointSettings{NetworkID: n.ID}
	}
	for k := range rec.Endpoints {
		if n, err := d.net.Network(context.Background(), k); err == nil && k != "default" {
			ns.Networks[n.Name] = &apinet.EndpointSettings{NetworkID: n.ID}
		}
	}
	return ns
}

// portSummary is ps's Ports of a running container: its published ports,
// and exposed ones without a host side.
func (d *Daemon) portSummary(rec containerRecord) []container.PortSummary {
	out := []container.PortSummary{}
	if d.net == nil || rec.State.Status != container.StateRunning && rec.State.Status != container.StatePaused {
		return out
	}
	sb, err := d.net.Sandbox(rec.ID)
	if err != nil {
		return out
	}
	published := map[string]bool{}
	for _, b := range sb.Ports {
		ip := b.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		a, _ := netip.ParseAddr(ip)
		out = append(out, container.PortSummary{IP: a, PrivatePort: b.ContainerPort, PublicPort: b.HostPort, Type: b.Proto})
		published[b.Private()] = true
	}
	for p := range rec.Config.ExposedPorts {
		if !published[p.String()] {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
	}
	return out
}

// endpointsKey carries a create request's NetworkingConfig from the route
// into CreateContainer, whose signature predates it.
type endpointsKey struct{}

func withEndpoints(ctx context.Context, eps map[string]*apinet.EndpointSettings) context.Context {
	if len(eps) == 0 {
		return ctx
	}
	return context.WithValue(ctx, endpointsKey{}, eps)
}

func endpointsOf(ctx context.Context) map[string]*apinet.EndpointSettings {
	eps, _ := ctx.Value(endpointsKey{}).(map[string]*apinet.EndpointSettings)
	return eps
}

func parseMAC(s string) (apinet.HardwareAddr, error) {
	hw, err := net.ParseMAC(s)
	return apinet.HardwareAddr(hw), err
}

// networkMessage is a network package error without its sentinel's text
// at the end ("...: conflicting options"), which reads twice in Docker's
// one-line errors.
func networkMessage(err error) string {
	msg := err.Error()
	if u := errors.Unwrap(err); u != nil {
		msg = strings.TrimSuffix(msg, ": "+u.Error())
	}
	return msg
}

// legacyNetworkSettings adds to NetworkSettings the fields of the default
// bridge's endpoint that API 1.44 still has at its top level and that
// scripts read (`inspect -f '{{.NetworkSettings.IPAddress}}'`); the moby
// types of this module no longer carry them.
type legacyNetworkSettings struct {
	container.NetworkSettings
	Bridge      string
	SandboxID   string
	SandboxKey  string
	EndpointID  string
	Gateway     string
	IPAddress   string
	IPPrefixLen int
	MacAddress  string
}

// inspectWithNetwork is inspect's answer with legacyNetworkSettings.
type inspectWithNetwork struct {
	container.InspectResponse
	NetworkSettings *legacyNetworkSettings
}

// withLegacyNetwork wraps an inspect answer for the wire.
func (d *Daemon) withLegacyNetwork(resp container.InspectResponse) inspectWithNetwork {
	out := inspectWithNetwork{InspectResponse: resp, NetworkSettings: &legacyNetworkSettings{}}
	if resp.NetworkSettings != nil {
		out.NetworkSettings.NetworkSettings = *resp.NetworkSettings
		if ep := resp.NetworkSettings.Networks[network.DefaultNetwork]; ep != nil {
			ns := out.NetworkSettings
			ns.EndpointID = ep.EndpointID
			if ep.Gateway.IsValid() {
				ns.Gateway = ep.Gateway.String()
			}
			if ep.IPAddress.IsValid() {
				ns.IPAddress = ep.IPAddress.String()
			}
			ns.IPPrefixLen = ep.IPPrefixLen
			if len(ep.MacAddress) > 0 {
				ns.MacAddress = ep.MacAddress.String()
			}
		}
	}
	if d.net != nil {
		if sb, err := d.net.Sandbox(resp.ID); err == nil {
			out.NetworkSettings.SandboxID = sb.ID
			out.NetworkSettings.SandboxKey = sb.NetnsPath
		}
	}
	return out
}
