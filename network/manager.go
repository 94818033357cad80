package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Defaults for the default bridge network.
const (
	DefaultBridge = "fusebox0"
	cniVersion    = "1.0.0"
	// loopbackNet is the network name under which older versions cached
	// the loopback plugin's attachment; no user network may take it.
	loopbackNet = "fusebox-lo"
)

// DefaultSubnet is the default bridge network's subnet: inside 172.16/12
// like Docker's, but far from 172.17 so that both can run on one host.
var DefaultSubnet = netip.MustParsePrefix("172.29.0.0/16")

// DefaultPluginDirs are searched for CNI plugin binaries (Debian's
// containernetworking-plugins installs into /usr/lib/cni).
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni"}

// Errors callers test with errors.Is.
var (
	ErrNetworkNotFound = errors.New("network not found")
	ErrNetworkExists   = errors.New("network already exists")
	ErrNetworkInUse    = errors.New("network has active endpoints")
	ErrPredefined      = errors.New("pre-defined network")
	ErrPortAllocated   = errors.New("port is already allocated")
	ErrSandboxExists   = errors.New("sandbox already exists")
	ErrNoSandbox       = errors.New("no such sandbox")
	ErrNotConnected    = errors.New("not connected to network")
	ErrConnected       = errors.New("already connected to network")
	ErrConflict        = errors.New("conflicting options")
	ErrInvalidAddress  = errors.New("invalid address")
	ErrPoolOverlap     = errors.New("pool overlaps with other one on this address space")
)

// requiredPlugins are the CNI plugins the configurations here use. (The
// loopback and firewall plugins of older versions are only needed to remove
// their leftovers, through libcni's cache.)
var requiredPlugins = []string{"bridge", "host-local", "portmap"}

// ErrPluginMissing is returned by New when a CNI plugin is not installed.
var ErrPluginMissing = errors.New("cni plugin missing")

func pluginPresent(dirs []string, name string) bool {
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// Config says where a Manager keeps its state.
type Config struct {
	// Root holds the manager's files: ipam/ (host-local leases), cache/
	// (libcni's cache of what was added, used for DEL), sandboxes/ (one
	// record per container). The daemon passes <root>/network.
	Root string
	// NetnsDir holds the named network namespaces; DefaultNetnsDir if empty.
	NetnsDir string
	// PluginDirs are searched for CNI plugins; DefaultPluginDirs if empty.
	PluginDirs []string
	// Store keeps network records; a FileStore under Root/networks if nil.
	Store Store
	// DefaultSubnet and DefaultBridge configure the default network when it
	// is first created; the package defaults if zero.
	DefaultSubnet netip.Prefix
	DefaultBridge string
	// Spare keeps a sandbox on the default network made ahead of need, for
	// the next container that asks for nothing else (spare.go). The daemon
	// turns it on; without it every Setup makes its own.
	Spare bool
}

// Manager sets up and tears down the network stacks of containers. Every
// method is safe to call concurrently; all CNI calls and the port and
// address bookkeeping run under one lock, so two setups can never pick the
// same host port.
type Manager struct {
	root, netnsDir string
	defaultBridge  string
	store          Store
	cni            *cniCalls

	mu        sync.Mutex
	sandboxes map[string]*Sandbox // by container id
	// spares are sandboxes on the default network made ahead of need or
	// recycled (at most maxSpares), and filling is closed when the one
	// being made is ready (spare.go).
	spares  []*Sandbox
	filling chan struct{}
	// retiring holds, by container id, the sandboxes Retire is tearing
	// down in the background; each channel is closed when that is done.
	retiring    map[string]chan struct{}
	useSpare    bool
	spareWanted bool // a Setup asked for the default network alone
	closed      bool
	bg          sync.WaitGroup // spare fills and retirements
}

// Attachment is one interface of a sandbox on one bridge network.
type Attachment struct {
	Network   string       `json:"network"`
	NetworkID string       `json:"networkID"`
	IfName    string       `json:"ifName"` // eth0, eth1, ... inside the netns
	Address   netip.Prefix `json:"address"`
	Gateway   netip.Addr   `json:"gateway"`
	MAC       string       `json:"mac"`
	Aliases   []string     `json:"aliases,omitempty"`
	// EndpointID is a random id per attachment, Docker's EndpointID.
	EndpointID string `json:"endpointID"`
}

// Sandbox is a container's network stack: what Setup made and Teardown
// removes. It is saved under Root/sandboxes so it survives a restart.
type Sandbox struct {
	ID string `json:"id"` // the container's id
	// Key is the sandbox's CNI container id and netns file name when they
	// are not ID: a sandbox made as a spare before its container existed.
	Key      string `json:"key,omitempty"`
	Name     string `json:"name"`
	Hostname string `json:"hostname,omitempty"`
	Mode     Mode   `json:"mode"`
	// NetnsPath is the namespace to give libcontainer (a "network"
	// namespace with this path); "" for host mode (no new namespace).
	NetnsPath string `json:"netnsPath,omitempty"`
	// OwnNetns is true when the namespace was made for this sandbox and is
	// removed with it (bridge and none modes).
	OwnNetns    bool          `json:"ownNetns,omitempty"`
	Attachments []Attachment  `json:"attachments,omitempty"`
	Ports       []PortBinding `json:"ports,omitempty"` // on the first attachment's network
	Created     time.Time     `json:"created"`
}

// cniID is what CNI and the netns directory know the sandbox by.
func (s *Sandbox) cniID() string {
	if s.Key != "" {
		return s.Key
	}
	return s.ID
}

// Primary is the first attachment (eth0), if any.
func (s *Sandbox) Primary() (Attachment, bool) {
	if s == nil || len(s.Attachments) == 0 {
		return Attachment{}, false
	}
	return s.Attachments[0], true
}

func (s *Sandbox) attachment(network string) (int, bool) {
	for i, a := range s.Attachments {
		if a.Network == network {
			return i, true
		}
	}
	return -1, false
}

func (s *Sandbox) clone() *Sandbox {
	c := *s
	c.Attachments = append([]Attachment(nil), s.Attachments...)
	c.Ports = append([]PortBinding(nil), s.Ports...)
	return &c
}

// New opens the manager's state under cfg.Root, makes the netns directory a
// shared mount point, and creates the records of the predefined networks
// (bridge, host, none) if the store lacks them.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Root == "" {
		return nil, errors.New("network: config needs a root directory")
	}
	if cfg.NetnsDir == "" {
		cfg.NetnsDir = DefaultNetnsDir
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	if !cfg.DefaultSubnet.IsValid() {
		cfg.DefaultSubnet = DefaultSubnet
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = DefaultBridge
	}
	for _, p := range requiredPlugins {
		if !pluginPresent(cfg.PluginDirs, p) {
			return nil, fmt.Errorf("network: cni plugin %s not in %v (Debian package containernetworking-plugins): %w", p, cfg.PluginDirs, ErrPluginMissing)
		}
	}
	for _, d := range []string{cfg.Root, filepath.Join(cfg.Root, "ipam"), filepath.Join(cfg.Root, "cache"), filepath.Join(cfg.Root, "sandboxes")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	}
	if err := ensureNetnsDir(cfg.NetnsDir); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if cfg.Store == nil {
		fs, err := NewFileStore(filepath.Join(cfg.Root, "networks"))
		if err != nil {
			return nil, err
		}
		cfg.Store = fs
	}
	m := &Manager{
		root:          cfg.Root,
		netnsDir:      cfg.NetnsDir,
		defaultBridge: cfg.DefaultBridge,
		store:         cfg.Store,
		cni:           &cniCalls{c: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.Root, "cache"), nil)},
		sandboxes:     map[string]*Sandbox{},
		retiring:      map[string]chan struct{}{},
		useSpare:      cfg.Spare,
	}
	if err := m.ensurePredefined(ctx, cfg); err != nil {
		return nil, err
	}
	if err := m.loadSandboxes(); err != nil {
		return nil, err
	}
	nets, err := m.store.Networks(ctx)
	if err != nil {
		return nil, err
	}
	var bridges []string
	for _, n := range nets {
		if n.Bridge != "" {
			bridges = append(bridges, n.Bridge)
		}
	}
	if err := removeLegacyIsolation(bridges); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	// Rules are gone after a reboot; records are not.
	if err := ensureNetworkRules(nets, m.defaultBridge); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	return m, nil
}

func (m *Manager) ensurePredefined(ctx context.Context, cfg Config) error {
	nets, err := m.store.Networks(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, n := range nets {
		have[n.Name] = true
	}
	now := time.Now().UTC()
	want := []Network{
		{Name: DefaultNetwork, Driver: "bridge", Bridge: cfg.DefaultBridge, Subnet: cfg.DefaultSubnet,
			Gateway: cfg.DefaultSubnet.Addr().Next(), Created: now,
			Options: map[string]string{"com.docker.network.bridge.name": cfg.DefaultBridge, "com.docker.network.bridge.enable_ip_masquerade": "true"}},
		{Name: HostNetwork, Driver: "host", Created: now},
		{Name: NoneNetwork, Driver: "null", Created: now},
	}
	for _, n := range want {
		if have[n.Name] {
			continue
		}
		n.ID = newID()
		if err := m.store.PutNetwork(ctx, n); err != nil {
			return fmt.Errorf("create network %s: %w", n.Name, err)
		}
	}
	return nil
}

func (m *Manager) sandboxPath(id string) string {
	return filepath.Join(m.root, "sandboxes", id+".json")
}

func (m *Manager) loadSandboxes() error {
	dir := filepath.Join(m.root, "sandboxes")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		var s Sandbox
		if err := json.Unmarshal(b, &s); err != nil {
			if len(b) == 0 {
				// Written but not synced before the machine went down
				// (writeRecord): what it named went down with it, and
				// Cleanup sweeps the netns directory, the CNI cache and
				// the leases for whatever no record names.
				_ = os.Remove(filepath.Join(dir, e.Name()))
				continue
			}
			return fmt.Errorf("network: sandbox %s: %w", e.Name(), err)
		}
		m.sandboxes[s.ID] = &s
	}
	return nil
}

func (m *Manager) saveSandbox(s *Sandbox) error {
	if err := m.writeRecord(s); err != nil {
		return err
	}
	m.sandboxes[s.ID] = s
	return nil
}

// writeRecord writes s's record file, for a container's sandbox
// (saveSandbox) or a spare, which no container owns yet. The write is not
// synced: a record names kernel state (a netns, veths, rules) that a crash
// of the machine takes with it, and the record is only ever read to clean
// that state up (Cleanup, at start-up). Two records of every container
// start, each a sync of 1 to 3 ms on this path, are spared.
func (m *Manager) writeRecord(s *Sandbox) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := replaceFile(m.sandboxPath(s.ID), b, false); err != nil {
		return fmt.Errorf("save sandbox %s: %w", s.ID, err)
	}
	return nil
}

// removeRecord deletes a sandbox's record file; a missing one is not an
// error, so that a teardown can be repeated.
func (m *Manager) removeRecord(id string) error {
	if err := os.Remove(m.sandboxPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Request describes the network stack Setup makes for one container.
type Request struct {
	ID       string // container id: the netns file and CNI container id
	Name     string // container name, resolvable by peers on user networks
	Hostname string // the container's hostname, for its own hosts line
	Mode     Mode
	// ContainerNetns is, for container:<x> mode, the netns path of the
	// container x (its Sandbox.NetnsPath); the daemon resolves x.
	ContainerNetns string
	Ports          []PortBinding // from ParsePublish / ParseBinding / PublishAll
	MAC            string        // --mac-address
	IP             string        // --ip
	Aliases        []string      // --network-alias
}

// Setup makes the network stack of a container before it starts: a named
// netns with lo up, and for bridge mode an eth0 on the network with its
// address, routes, NAT and published ports. Ports are checked before
// anything is made: a taken one fails with ErrPortAllocated and leaves
// nothing behind, as does any other failure. Give the returned NetnsPath to
// the container's spec ("" means stay in the host's namespace). A request
// for the default network alone takes the spare sandbox made ahead of it
// when there is one (spare.go); Refill makes the next.
func (m *Manager) Setup(ctx context.Context, req Request) (*Sandbox, error) {
	if !validName(req.ID) {
		return nil, fmt.Errorf("network setup: invalid container id %q", req.ID)
	}
	m.awaitRetired(req.ID)
	if !m.useSpare || !spareFits(req) {
		return m.setup(ctx, req)
	}
	if sb, ok, err := m.takeSpare(req); ok {
		return sb, err
	}
	return m.setup(ctx, req)
}

func (m *Manager) setup(ctx context.Context, req Request) (*Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sandboxes[req.ID]; ok {
		return nil, fmt.Errorf("network setup %s: %w", req.ID, ErrSandboxExists)
	}
	if _, err := os.Lstat(filepath.Join(m.netnsDir, req.ID)); err == nil {
		// Leftovers of an earlier run of this id that no record tells of (a
		// crash between making and recording): clear them, or the netns file
		// would be in the way.
		if err := m.removeLeftovers(ctx, req.ID); err != nil {
			return nil, fmt.Errorf("network setup %s: %w", req.ID, err)
		}
	}
	sb := &Sandbox{ID: req.ID, Name: req.Name, Hostname: req.Hostname, Mode: req.Mode, Created: time.Now().UTC()}
	switch req.Mode.Kind {
	case KindHost:
		// Docker discards published ports in host mode; so do we.
		if req.MAC != "" || req.IP != "" {
			return nil, fmt.Errorf("conflicting options: mac-address or ip and the network mode: %w", ErrConflict)
		}
	case KindContainer:
		if len(req.Ports) > 0 {
			return nil, fmt.Errorf("conflicting options: port publishing and the container type network mode: %w", ErrConflict)
		}
		if req.MAC != "" || req.IP != "" {
			return nil, fmt.Errorf("conflicting options: mac-address or ip and the network mode: %w", ErrConflict)
		}
		if req.ContainerNetns == "" {
			return nil, fmt.Errorf("network setup %s: container:%s has no network namespace", req.ID, req.Mode.Container)
		}
		if _, err := os.Stat(req.ContainerNetns); err != nil {
			return nil, fmt.Errorf("network setup %s: container:%s: %w", req.ID, req.Mode.Container, err)
		}
		sb.NetnsPath = req.ContainerNetns
	case KindNone:
		sb.NetnsPath = filepath.Join(m.netnsDir, req.ID)
		sb.OwnNetns = true
		if err := m.makeNetns(sb); err != nil {
			return nil, err
		}
	case KindBridge, "":
		// The zero Mode is the default network, as an empty --net is.
		if err := m.setupBridge(ctx, sb, req); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("network setup %s: unknown mode %q: %w", req.ID, req.Mode.Kind, ErrInvalidMode)
	}
	if err := m.saveSandbox(sb); err != nil {
		m.teardownLocked(ctx, sb)
		return nil, err
	}
	return sb.clone(), nil
}

func (m *Manager) setupBridge(ctx context.Context, sb *Sandbox, req Request) error {
	if req.Mode.Network == "" {
		req.Mode.Network = DefaultNetwork
	}
	sb.Mode.Kind = KindBridge
	n, err := m.lookupNetwork(ctx, req.Mode.Network)
	if err != nil {
		return err
	}
	if n.Driver != "bridge" {
		return fmt.Errorf("network %s is not a bridge network: %w", n.Name, ErrInvalidMode)
	}
	sb.Mode.Network = n.Name
	ep := EndpointOptions{IP: req.IP, MAC: req.MAC, Aliases: req.Aliases}
	if err := checkEndpoint(n, ep); err != nil {
		return err
	}
	ports, err := m.allocatePorts(sb, req.Ports)
	if err != nil {
		return err
	}
	sb.Ports = ports
	sb.NetnsPath = filepath.Join(m.netnsDir, sb.ID)
	sb.OwnNetns = true
	if err := m.makeNetns(sb); err != nil {
		return err
	}
	att, err := m.attach(ctx, sb, n, "eth0", ep, ports)
	if err != nil {
		m.teardownLocked(ctx, sb)
		return err
	}
	sb.Attachments = append(sb.Attachments, att)
	return nil
}

// makeNetns creates the sandbox's namespace with lo up in it.
func (m *Manager) makeNetns(sb *Sandbox) error {
	if err := createNetns(sb.NetnsPath); err != nil {
		return fmt.Errorf("network setup %s: %w", sb.ID, err)
	}
	return nil
}

func (m *Manager) runtimeConf(sb *Sandbox, ifName string, caps map[string]any) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: sb.cniID(), NetNS: sb.NetnsPath, IfName: ifName, CapabilityArgs: caps}
}

// EndpointOptions are the per-network settings of a sandbox's interface.
type EndpointOptions struct {
	IP      string   // --ip: a static address inside the network's subnet
	MAC     string   // --mac-address
	Aliases []string // extra names peers resolve to this endpoint
}

// CheckEndpoint checks --ip, --mac-address and aliases against the network
// they are for, as Setup and Connect will; the daemon calls it at create.
func CheckEndpoint(n Network, ep EndpointOptions) error { return checkEndpoint(n, ep) }

func checkEndpoint(n Network, ep EndpointOptions) error {
	if ep.MAC != "" {
		if hw, err := net.ParseMAC(ep.MAC); err != nil || len(hw) != 6 {
			return fmt.Errorf("invalid MAC address: %s: %w", ep.MAC, ErrInvalidAddress)
		}
	}
	if len(ep.Aliases) > 0 && n.Name == DefaultNetwork {
		return fmt.Errorf("network-scoped alias is supported only for containers in user defined networks: %w", ErrConflict)
	}
	if ep.IP != "" {
		ip, err := netip.ParseAddr(ep.IP)
		if err != nil || !ip.Is4() {
			return fmt.Errorf("invalid IPv4 address: %s: %w", ep.IP, ErrInvalidAddress)
		}
		if n.Name == DefaultNetwork {
			return fmt.Errorf("user specified IP address is supported on user defined networks only: %w", ErrConflict)
		}
		if !n.Subnet.Contains(ip) || ip == n.Gateway || ip == n.Subnet.Masked().Addr() {
			return fmt.Errorf("no configured subnet or ip-range contain the IP address %s: %w", ip, ErrInvalidAddress)
		}
	}
	return nil
}

// attach runs CNI ADD for one network on the sandbox's namespace.
func (m *Manager) attach(ctx context.Context, sb *Sandbox, n Network, ifName string, ep EndpointOptions, ports []PortBinding) (Attachment, error) {
	list, err := m.confList(n, len(ports) > 0)
	if err != nil {
		return Attachment{}, err
	}
	caps := capabilityArgs(n, ep, ports)
	rt := m.runtimeConf(sb, ifName, caps)
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		// ADD failed halfway: DEL is the CNI way to undo whatever was made.
		m.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return Attachment{}, fmt.Errorf("attach %s to network %s: %w", sb.ID, n.Name, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		m.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return Attachment{}, fmt.Errorf("attach %s to network %s: %w", sb.ID, n.Name, err)
	}
	att := Attachment{Network: n.Name, NetworkID: n.ID, IfName: ifName, Gateway: n.Gateway,
		Aliases: append([]string(nil), ep.Aliases...), EndpointID: newID()}
	for _, ifc := range r.Interfaces {
		if ifc.Name == ifName && ifc.Sandbox != "" {
			att.MAC = ifc.Mac
		}
	}
	for _, ipc := range r.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP.To4()); ok {
			ones, _ := ipc.Address.Mask.Size()
			att.Address = netip.PrefixFrom(a, ones)
			if g, ok := netip.AddrFromSlice(ipc.Gateway.To4()); ok {
				att.Gateway = g
			}
			break
		}
	}
	if !att.Address.IsValid() {
		m.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return Attachment{}, fmt.Errorf("attach %s to network %s: plugin gave no IPv4 address", sb.ID, n.Name)
	}
	return att, nil
}

// capabilityArgs are the runtimeConfig values the plugins declared
// capabilities for: portMappings (portmap), mac (bridge), ips (host-local).
func capabilityArgs(n Network, ep EndpointOptions, ports []PortBinding) map[string]any {
	caps := map[string]any{}
	if len(ports) > 0 {
		pm := make([]map[string]any, 0, len(ports))
		for _, p := range ports {
			e := map[string]any{"hostPort": int(p.HostPort), "containerPort": int(p.ContainerPort), "protocol": p.Proto}
			if p.HostIP != "" {
				e["hostIP"] = p.HostIP
			}
			pm = append(pm, e)
		}
		caps["portMappings"] = pm
	}
	if ep.MAC != "" {
		caps["mac"] = ep.MAC
	}
	if ep.IP != "" {
		caps["ips"] = []string{ep.IP + "/" + strconv.Itoa(n.Subnet.Bits())}
	}
	return caps
}

// detach runs CNI DEL for one attachment with the config list and runtime
// capability args that libcni cached at ADD. Both matter: the list has
// portmap only if the container published ports (and a list cached by an
// older version also has the firewall plugin), and portmap's DEL does
// nothing unless it is given the port mappings again. Without a cache entry
// (lost, or never written by an ADD that failed) the list and args are
// rebuilt from the network and the sandbox's ports, as ADD made them.
func (m *Manager) detach(ctx context.Context, sb *Sandbox, a Attachment, ports []PortBinding) error {
	rt := m.runtimeConf(sb, a.IfName, nil)
	list, caps, err := m.cachedList(sb.cniID(), a.Network, a.IfName)
	if err != nil {
		return err
	}
	rt.CapabilityArgs = caps
	if list == nil {
		n, err := m.lookupNetwork(ctx, a.Network)
		if err != nil {
			return fmt.Errorf("detach %s from %s: no cached config and %w", sb.ID, a.Network, err)
		}
		if list, err = m.confList(n, len(ports) > 0); err != nil {
			return err
		}
		rt.CapabilityArgs = capabilityArgs(n, EndpointOptions{}, ports)
	}
	lost := !netnsExists(rt.NetNS)
	if lost {
		// Plugins told of a namespace that is no longer one fail; with none
		// they free the address and rules they can find without it.
		rt.NetNS = ""
	}
	if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("detach %s from %s: %w", sb.ID, a.Network, err)
	}
	if lost && masqPerContainer(list) {
		return removeMasqRules(a.Network, sb.cniID())
	}
	return nil
}

// cachedList returns the config list and capability args libcni cached when
// the attachment was added, or a nil list when there is none.
func (m *Manager) cachedList(id, network, ifName string) (*libcni.NetworkConfigList, map[string]any, error) {
	atts, err := m.cni.GetCachedAttachments(id)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range atts {
		if a.Network == network && a.IfName == ifName {
			l, err := libcni.NetworkConfFromBytes(a.Config)
			return l, a.CapabilityArgs, err
		}
	}
	return nil, nil, nil
}

// Teardown removes everything Setup and Connect made for a container: CNI
// DEL on each network (veth, port mappings, IPAM lease) and the namespace
// file (lo goes with the namespace). Call it after the container's
// processes are gone. It is idempotent: an unknown id only has its
// leftovers, if any, removed.
func (m *Manager) Teardown(ctx context.Context, id string) error {
	m.awaitRetired(id)
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.sandboxes[id]
	if !ok {
		if !validName(id) {
			return fmt.Errorf("teardown: %q: %w", id, ErrNoSandbox)
		}
		return m.removeLeftovers(ctx, id)
	}
	return m.teardownLocked(ctx, sb)
}

func (m *Manager) teardownLocked(ctx context.Context, sb *Sandbox) error {
	if err := m.teardown(ctx, sb); err != nil {
		// Keep the record so that Cleanup or another Teardown can retry.
		return err
	}
	delete(m.sandboxes, sb.ID)
	if err := m.removeRecord(sb.ID); err != nil {
		return fmt.Errorf("teardown %s: %w", sb.ID, err)
	}
	return nil
}

// teardown undoes what Setup and Connect made for sb on the host. It needs
// no lock: the CNI calls take their own (cniCalls), and sb is the caller's.
func (m *Manager) teardown(ctx context.Context, sb *Sandbox) error {
	// Undoing must finish even when the caller gave up waiting: a DEL cut
	// short leaves rules and leases behind.
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i := len(sb.Attachments) - 1; i >= 0; i-- {
		var ports []PortBinding
		if i == 0 {
			ports = sb.Ports
		}
		if err := m.detach(ctx, sb, sb.Attachments[i], ports); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && sb.OwnNetns {
		// What the record does not list but the cache may: the loopback
		// attachment of a sandbox made by an older version. Usually nothing:
		// one directory read.
		if err := m.delCached(ctx, sb.cniID()); err != nil {
			errs = append(errs, err)
		}
	}
	if sb.OwnNetns {
		if err := removeNetns(sb.NetnsPath); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("teardown %s: %w", sb.ID, err)
	}
	return nil
}

// removeLeftovers deletes what a container without a sandbox record may
// still have: cached CNI attachments, its netns file, its leases.
func (m *Manager) removeLeftovers(ctx context.Context, id string) error {
	var errs []error
	if err := m.delCached(ctx, id); err != nil {
		errs = append(errs, err)
	}
	if err := removeNetns(filepath.Join(m.netnsDir, id)); err != nil {
		errs = append(errs, err)
	}
	if err := m.removeLeases(func(owner string) bool { return owner == id }); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// delCached runs CNI DEL for every attachment of a container that libcni's
// cache still holds, with the cached list and args: whatever version of
// fusebox added it, with whichever plugins (loopback, firewall, ipMasq).
func (m *Manager) delCached(ctx context.Context, id string) error {
	atts, err := m.cni.GetCachedAttachments(id)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range atts {
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("cached config of %s on %s: %w", id, a.Network, err))
			continue
		}
		rt := &libcni.RuntimeConf{ContainerID: a.ContainerID, NetNS: a.NetNS, IfName: a.IfName, Args: a.CniArgs, CapabilityArgs: a.CapabilityArgs}
		lost := !netnsExists(rt.NetNS)
		if lost {
			rt.NetNS = ""
		}
		if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
			errs = append(errs, fmt.Errorf("remove leftover %s on %s: %w", id, a.Network, err))
			continue
		}
		if lost && masqPerContainer(list) {
			if err := removeMasqRules(a.Network, id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeLeases deletes host-local lease files whose owner matches. A lease
// file is named by the address and holds "<container id>\n<ifname>".
func (m *Manager) removeLeases(match func(owner string) bool) error {
	dir := filepath.Join(m.root, "ipam")
	nets, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, nd := range nets {
		if !nd.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, nd.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			if !isLeaseFile(f.Name()) {
				continue
			}
			p := filepath.Join(dir, nd.Name(), f.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			owner, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
			if match(strings.TrimSpace(owner)) {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func isLeaseFile(name string) bool {
	_, err := netip.ParseAddr(name)
	return err == nil
}

// Cleanup is for daemon start-up: it tears down the sandboxes of containers
// not in live and removes what crashed runs left behind (CNI attachments in
// the cache, netns files, IPAM leases) whose container is not in live.
func (m *Manager) Cleanup(ctx context.Context, live map[string]bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	// CNI, the netns directory and the leases know a sandbox by its key,
	// which a sandbox taken from the spares does not share with its
	// container.
	liveKeys := map[string]bool{}
	for id := range live {
		liveKeys[id] = true
	}
	for id, sb := range m.sandboxes {
		if live[id] {
			liveKeys[sb.cniID()] = true
			continue
		}
		if err := m.teardownLocked(ctx, sb); err != nil {
			errs = append(errs, err)
		}
	}
	atts, err := m.cni.GetCachedAttachments("")
	if err != nil {
		errs = append(errs, err)
	}
	done := map[string]bool{}
	for _, a := range atts {
		if liveKeys[a.ContainerID] || done[a.ContainerID] || !validName(a.ContainerID) {
			continue
		}
		done[a.ContainerID] = true
		if err := m.removeLeftovers(ctx, a.ContainerID); err != nil {
			errs = append(errs, err)
		}
	}
	if ents, err := os.ReadDir(m.netnsDir); err == nil {
		for _, e := range ents {
			if !liveKeys[e.Name()] {
				if err := removeNetns(filepath.Join(m.netnsDir, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := m.removeLeases(func(owner string) bool { return !liveKeys[owner] }); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network cleanup: %w", err)
	}
	return nil
}

// Sandbox returns a copy of a container's sandbox record.
func (m *Manager) Sandbox(id string) (*Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.sandboxes[id]
	if !ok {
		return nil, fmt.Errorf("sandbox %s: %w", id, ErrNoSandbox)
	}
	return sb.clone(), nil
}

// Connect attaches a running container's sandbox to one more network (the
// next free ethN), like `network connect`.
func (m *Manager) Connect(ctx context.Context, id, network string, ep EndpointOptions) (Attachment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.sandboxes[id]
	if !ok {
		return Attachment{}, fmt.Errorf("connect %s: %w", id, ErrNoSandbox)
	}
	if !sb.OwnNetns {
		return Attachment{}, fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network: %w", ErrConflict)
	}
	n, err := m.lookupNetwork(ctx, network)
	if err != nil {
		return Attachment{}, err
	}
	if n.Driver != "bridge" {
		return Attachment{}, fmt.Errorf("container cannot be connected to network %s: %w", n.Name, ErrConflict)
	}
	if _, ok := sb.attachment(n.Name); ok {
		return Attachment{}, fmt.Errorf("endpoint with name %s already exists in network %s: %w", sb.Name, n.Name, ErrConnected)
	}
	if err := checkEndpoint(n, ep); err != nil {
		return Attachment{}, err
	}
	att, err := m.attach(ctx, sb, n, nextIfName(sb), ep, nil)
	if err != nil {
		return Attachment{}, err
	}
	next := sb.clone()
	next.Attachments = append(next.Attachments, att)
	if sb.Mode.Kind == KindNone {
		next.Mode = Mode{Kind: KindBridge, Network: n.Name}
	}
	if err := m.saveSandbox(next); err != nil {
		m.detach(context.WithoutCancel(ctx), next, att, nil)
		return Attachment{}, err
	}
	return att, nil
}

func nextIfName(sb *Sandbox) string {
	used := map[string]bool{}
	for _, a := range sb.Attachments {
		used[a.IfName] = true
	}
	for i := 0; ; i++ {
		if name := "eth" + strconv.Itoa(i); !used[name] {
			return name
		}
	}
}

// Disconnect detaches a container from one network, like `network
// disconnect`. Published ports go with the network they were on.
func (m *Manager) Disconnect(ctx context.Context, id, network string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.sandboxes[id]
	if !ok {
		return fmt.Errorf("disconnect %s: %w", id, ErrNoSandbox)
	}
	name := network
	if n, err := m.lookupNetwork(ctx, network); err == nil {
		name = n.Name
	}
	i, ok := sb.attachment(name)
	if !ok {
		return fmt.Errorf("container %s is not connected to network %s: %w", id, network, ErrNotConnected)
	}
	var ports []PortBinding
	if i == 0 {
		ports = sb.Ports
	}
	if err := m.detach(ctx, sb, sb.Attachments[i], ports); err != nil {
		return err
	}
	next := sb.clone()
	next.Attachments = append(next.Attachments[:i], next.Attachments[i+1:]...)
	if i == 0 {
		next.Ports = nil
	}
	return m.saveSandbox(next)
}

// CheckPorts tells whether Setup could publish ports now, without making
// anything: the daemon calls it when a container is created, so that a
// taken port fails `create` and `run` before a container exists (Setup
// checks again at start, when it counts). name is the container's name for
// the error text; ErrPortAllocated is wrapped when a port is taken.
func (m *Manager) CheckPorts(name string, ports []PortBinding) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.allocatePorts(&Sandbox{Name: name}, ports)
	return err
}

// allocatePorts checks every binding against the ports other sandboxes
// hold and against the host (by binding the address for a moment), and
// picks host ports for bindings that ask for any port or a port range.
func (m *Manager) allocatePorts(sb *Sandbox, req []PortBinding) ([]PortBinding, error) {
	out := make([]PortBinding, 0, len(req))
	taken := func(b PortBinding) bool {
		for _, o := range m.sandboxes {
			for _, p := range o.Ports {
				if portsOverlap(p, b) {
					return true
				}
			}
		}
		for _, p := range out {
			if portsOverlap(p, b) {
				return true
			}
		}
		return false
	}
	for _, b := range req {
		if b.ContainerPort == 0 || (b.Proto != "tcp" && b.Proto != "udp") {
			return nil, portErrorf("invalid containerPort: %d/%s", b.ContainerPort, b.Proto)
		}
		switch {
		case b.HostPort != 0 && (b.HostPortEnd == 0 || b.HostPortEnd == b.HostPort):
			b.HostPortEnd = 0
			if taken(b) {
				return nil, allocatedError(sb, b, nil)
			}
			if err := probePort(b); err != nil {
				return nil, allocatedError(sb, b, err)
			}
		default:
			lo, hi := b.HostPort, b.HostPortEnd
			if lo == 0 {
				lo, hi = ephemeralRange()
			}
			got, err := pickPort(b, lo, hi, taken)
			if err != nil {
				return nil, fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", sb.Name, sb.ID, err)
			}
			b = got
		}
		out = append(out, b)
	}
	return out, nil
}

func allocatedError(sb *Sandbox, b PortBinding, cause error) error {
	msg := fmt.Sprintf("driver failed programming external connectivity on endpoint %s (%s): Bind for %s failed", sb.Name, sb.ID, b.HostAddr())
	if sb.ID == "" {
		// CheckPorts, before the container exists.
		msg = fmt.Sprintf("Bind for %s failed", b.HostAddr())
	}
	if cause != nil && !errors.Is(cause, syscall.EADDRINUSE) {
		// Not taken but unusable, e.g. an address the host does not have.
		return fmt.Errorf("%s: %w", msg, cause)
	}
	if cause != nil {
		return fmt.Errorf("%s: %w (%v)", msg, ErrPortAllocated, cause)
	}
	return fmt.Errorf("%s: %w", msg, ErrPortAllocated)
}

func portsOverlap(a, b PortBinding) bool {
	return a.Proto == b.Proto && a.HostPort == b.HostPort && (a.HostIP == "" || b.HostIP == "" || a.HostIP == b.HostIP)
}

// probePort binds the host address for a moment: a port some host process
// holds would be shadowed by the DNAT rule, so it is refused up front.
func probePort(b PortBinding) error {
	addr := b.HostAddr()
	if b.Proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

func pickPort(b PortBinding, lo, hi uint16, taken func(PortBinding) bool) (PortBinding, error) {
	n := int(hi) - int(lo) + 1
	var r [2]byte
	rand.Read(r[:])
	start := int(r[0])<<8 | int(r[1])
	for i := range n {
		c := b
		c.HostPort = uint16(int(lo) + (start+i)%n)
		c.HostPortEnd = 0
		if taken(c) || probePort(c) != nil {
			continue
		}
		return c, nil
	}
	ip := b.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return b, fmt.Errorf("Bind for %s:%d-%d failed: no free port in range: %w", ip, lo, hi, ErrPortAllocated)
}

// ephemeralRange is the kernel's local port range, where Docker also picks
// ports for -P.
func ephemeralRange() (uint16, uint16) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && lo > 0 && hi <= 65535 && lo <= hi {
				return uint16(lo), uint16(hi)
			}
		}
	}
	return 32768, 60999
}
