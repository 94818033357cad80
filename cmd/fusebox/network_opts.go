package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/moby/moby/api/types/container"
	apinet "github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"

	"github.com/fusebox/fusebox/network/netspec"
)

// netOpts are the network flags of `run` and `create`.
type netOpts struct {
	network                   string
	publish, expose           []string
	publishAll                bool
	dns, dnsSearch, dnsOption []string
	addHost, links, aliases   []string
	mac, ip                   string
}

func (o *netOpts) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&o.network, "network", "default", "Connect a container to a network (bridge, none, host, container:NAME|ID, or a user-defined network)")
	fl.StringVar(&o.network, "net", "default", "Connect a container to a network")
	_ = fl.MarkHidden("net")
	listVarP(fl, &o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fl.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	listVarP(fl, &o.expose, "expose", "", "Expose a port or a range of ports")
	listVarP(fl, &o.dns, "dns", "", "Set custom DNS servers")
	listVarP(fl, &o.dnsSearch, "dns-search", "", "Set custom DNS search domains")
	listVarP(fl, &o.dnsOption, "dns-option", "", "Set DNS options")
	listVarP(fl, &o.addHost, "add-host", "", "Add a custom host-to-IP mapping (host:ip)")
	listVarP(fl, &o.links, "link", "", "Add link to another container")
	listVarP(fl, &o.aliases, "network-alias", "", "Add network-scoped alias for the container")
	fl.StringVar(&o.mac, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fl.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
}

// apply puts the flags into the create request, checking each value so
// that a malformed one fails before anything is sent.
func (o *netOpts) apply(cfg *container.Config, hc *container.HostConfig) (*apinet.NetworkingConfig, error) {
	if _, err := netspec.ParseMode(o.network); err != nil {
		return nil, err
	}
	hc.NetworkMode = container.NetworkMode(o.network)
	hc.PublishAllPorts = o.publishAll
	ports := apinet.PortMap{}
	exposed := apinet.PortSet{}
	for _, spec := range o.publish {
		bs, err := netspec.ParsePublish(spec)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"-p, --publish\" flag: %w", spec, err)
		}
		for _, b := range bs {
			p, ok := apinet.PortFrom(b.ContainerPort, apinet.IPProtocol(b.Proto))
			if !ok {
				return nil, fmt.Errorf("invalid argument %q for \"-p, --publish\" flag", spec)
			}
			ab := apinet.PortBinding{}
			if b.HostIP != "" {
				ab.HostIP, _ = netip.ParseAddr(b.HostIP)
			}
			if b.HostPort != 0 {
				ab.HostPort = strconv.Itoa(int(b.HostPort))
				if b.HostPortEnd > b.HostPort {
					ab.HostPort += "-" + strconv.Itoa(int(b.HostPortEnd))
				}
			}
			ports[p] = append(ports[p], ab)
			exposed[p] = struct{}{}
		}
	}
	for _, spec := range o.expose {
		es, err := netspec.ParseExpose(spec)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			p, _ := apinet.PortFrom(e.Port, apinet.IPProtocol(e.Proto))
			exposed[p] = struct{}{}
		}
	}
	if len(ports) > 0 {
		hc.PortBindings = ports
	}
	if len(exposed) > 0 {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = apinet.PortSet{}
		}
		for p := range exposed {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	for _, s := range o.dns {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s is not an ip address", s)
		}
		hc.DNS = append(hc.DNS, a)
	}
	hc.DNSSearch, hc.DNSOptions = o.dnsSearch, o.dnsOption
	for _, h := range o.addHost {
		if _, err := netspec.ParseExtraHost(h); err != nil {
			return nil, err
		}
	}
	hc.ExtraHosts = o.addHost
	for _, l := range o.links {
		name, alias, hasAlias := cutLink(l)
		if name == "" || hasAlias && alias == "" {
			return nil, fmt.Errorf("invalid link format: %s", l)
		}
		hc.Links = append(hc.Links, name+":"+alias)
	}
	if o.mac == "" && o.ip == "" && len(o.aliases) == 0 {
		return nil, nil
	}
	ep := &apinet.EndpointSettings{Aliases: o.aliases}
	if o.mac != "" {
		hw, err := parseHardwareAddr(o.mac)
		if err != nil {
			return nil, err
		}
		ep.MacAddress = hw
	}
	if o.ip != "" {
		a, err := netip.ParseAddr(o.ip)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("invalid IPv4 address: %s", o.ip)
		}
		ep.IPAMConfig = &apinet.EndpointIPAMConfig{IPv4Address: a}
	}
	return &apinet.NetworkingConfig{EndpointsConfig: map[string]*apinet.EndpointSettings{o.network: ep}}, nil
}

// cutLink splits a --link value, "name" or "name:alias"; the alias is the
// name when absent.
func cutLink(l string) (name, alias string, hasAlias bool) {
	for i := 0; i < len(l); i++ {
		if l[i] == ':' {
			return l[:i], l[i+1:], true
		}
	}
	return l, l, false
}

// parseHardwareAddr checks a --mac-address value: six bytes.
func parseHardwareAddr(s string) (apinet.HardwareAddr, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("%s is not a valid mac address", s)
	}
	return apinet.HardwareAddr(hw), nil
}

// portsColumn is ps's PORTS of one container, from the API's port list.
func portsColumn(ps []container.PortSummary) string {
	var bs []netspec.PortBinding
	var exposed []netspec.ExposedPort
	for _, p := range ps {
		if p.PublicPort == 0 {
			exposed = append(exposed, netspec.ExposedPort{Port: p.PrivatePort, Proto: p.Type})
			continue
		}
		ip := ""
		if p.IP.IsValid() && !p.IP.IsUnspecified() {
			ip = p.IP.String()
		}
		bs = append(bs, netspec.PortBinding{HostIP: ip, HostPort: p.PublicPort, ContainerPort: p.PrivatePort, Proto: p.Type})
	}
	return netspec.PortsColumn(bs, exposed)
}
