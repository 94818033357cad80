package netspec

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// ErrInvalidPort is wrapped by every error about a malformed -p, --expose or
// port argument; the text after it is Docker's wording for the same mistake.
var ErrInvalidPort = errors.New("invalid port specification")

// portError keeps Docker's message as the error text while letting callers
// test for ErrInvalidPort with errors.Is.
type portError struct{ msg string }

func (e *portError) Error() string        { return e.msg }
func (e *portError) Is(target error) bool { return target == ErrInvalidPort }

// InvalidPortf is an error worded by format, as Docker words the same
// mistake, that errors.Is reports as ErrInvalidPort.
func InvalidPortf(format string, args ...any) error {
	return &portError{msg: fmt.Sprintf(format, args...)}
}

// PortBinding publishes one container port on the host. A zero HostPort asks
// for a free port chosen at setup; HostPortEnd > HostPort asks for a free one
// inside that range (Docker's `-p 8000-8010:80`). After Setup, every binding of
// a sandbox has a concrete HostPort and HostPortEnd == 0.
type PortBinding struct {
	HostIP        string `json:"hostIP,omitempty"` // "" means every address (0.0.0.0)
	HostPort      uint16 `json:"hostPort,omitempty"`
	HostPortEnd   uint16 `json:"hostPortEnd,omitempty"`
	ContainerPort uint16 `json:"containerPort"`
	Proto         string `json:"proto"` // "tcp" or "udp"
}

// Private is the container side in Docker's key form, "80/tcp".
func (b PortBinding) Private() string {
	return strconv.Itoa(int(b.ContainerPort)) + "/" + b.Proto
}

// HostAddr is the host side as Docker prints it, "0.0.0.0:5000".
func (b PortBinding) HostAddr() string {
	ip := b.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(b.HostPort)))
}

// ExposedPort is a container port named by EXPOSE or --expose.
type ExposedPort struct {
	Port  uint16
	Proto string
}

func (p ExposedPort) String() string { return strconv.Itoa(int(p.Port)) + "/" + p.Proto }

// ParsePublish parses one -p/--publish value in any of Docker's forms:
// "containerPort", "hostPort:containerPort", "ip:hostPort:containerPort",
// "ip::containerPort", with ranges ("8000-8010:80-90", or a host range for a
// single container port) and a "/tcp" or "/udp" suffix. A container range
// gives one binding per port.
func ParsePublish(spec string) ([]PortBinding, error) {
	ip, hostPart, ctrPart := splitPublish(spec)
	ctrPort, proto, _ := strings.Cut(ctrPart, "/")
	if ctrPort == "" {
		return nil, InvalidPortf("no port specified: %s<empty>", spec)
	}
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return nil, InvalidPortf("invalid proto: %s", proto)
	}
	if strings.HasPrefix(ip, "[") {
		if !strings.HasSuffix(ip, "]") {
			return nil, InvalidPortf("invalid IP address %s", ip)
		}
		ip = ip[1 : len(ip)-1]
	}
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, InvalidPortf("invalid IP address: %s", ip)
		}
		if !a.Is4() {
			return nil, InvalidPortf("invalid IP address: %s (only IPv4 is published)", ip)
		}
		if a.IsUnspecified() {
			ip = ""
		}
	}
	cStart, cEnd, err := parsePortRange(ctrPort)
	if err != nil || cStart == 0 {
		return nil, InvalidPortf("invalid containerPort: %s", ctrPort)
	}
	var hStart, hEnd int
	if hostPart != "" {
		hStart, hEnd, err = parsePortRange(hostPart)
		if err != nil {
			return nil, InvalidPortf("invalid hostPort: %s", hostPart)
		}
		if cEnd-cStart != hEnd-hStart && cEnd != cStart {
			return nil, InvalidPortf("invalid ranges specified for container and host Ports: %s and %s", ctrPort, hostPart)
		}
	}
	n := cEnd - cStart + 1
	out := make([]PortBinding, 0, n)
	for i := range n {
		b := PortBinding{HostIP: ip, ContainerPort: uint16(cStart + i), Proto: proto}
		if hostPart != "" {
			b.HostPort = uint16(hStart + i)
			if n == 1 && hEnd != hStart {
				b.HostPortEnd = uint16(hEnd)
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// ParseBinding turns one entry of the Engine API's PortBindings map (key
// "80/tcp", HostIp, HostPort "5000", "8000-8010" or "") into a binding, so the
// daemon gives docker-CLI requests the same checks as fusebox's own -p.
func ParseBinding(private, hostIP, hostPort string) ([]PortBinding, error) {
	spec := private
	if hostIP != "" || hostPort != "" {
		if strings.Contains(hostIP, ":") {
			hostIP = "[" + hostIP + "]"
		}
		spec = hostPort + ":" + private
		if hostIP != "" {
			spec = hostIP + ":" + spec
		}
	}
	return ParsePublish(spec)
}

// splitPublish splits "ip:host:ctr" from the right so that a bracketed IPv6
// address keeps its colons.
func splitPublish(spec string) (ip, host, ctr string) {
	parts := strings.Split(spec, ":")
	switch n := len(parts); n {
	case 1:
		return "", "", parts[0]
	case 2:
		return "", parts[0], parts[1]
	default:
		return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
	}
}

func parsePortRange(s string) (start, end int, err error) {
	if s == "" {
		return 0, 0, errors.New("empty string specified for ports")
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if start, err = parsePortNumber(lo); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return start, start, nil
	}
	if end, err = parsePortNumber(hi); err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, fmt.Errorf("invalid port range: %s", s)
	}
	return start, end, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	if n < 0 || n > 65535 {
		return 0, errors.New("value out of range (0–65535)")
	}
	return n, nil
}

// ParseExpose parses an EXPOSE or --expose value: "80", "80/udp" or a range
// "8000-8010/tcp".
func ParseExpose(spec string) ([]ExposedPort, error) {
	port, proto, _ := strings.Cut(spec, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return nil, InvalidPortf("invalid proto: %s", proto)
	}
	start, end, err := parsePortRange(port)
	if err != nil || start == 0 {
		return nil, InvalidPortf("invalid range format for --expose: %s", spec)
	}
	out := make([]ExposedPort, 0, end-start+1)
	for p := start; p <= end; p++ {
		out = append(out, ExposedPort{Port: uint16(p), Proto: proto})
	}
	return out, nil
}

// PublishAll is -P: one binding with a random host port for each exposed port
// that no explicit binding already publishes.
func PublishAll(exposed []ExposedPort, explicit []PortBinding) []PortBinding {
	have := make(map[ExposedPort]bool, len(explicit))
	for _, b := range explicit {
		have[ExposedPort{b.ContainerPort, b.Proto}] = true
	}
	out := append([]PortBinding(nil), explicit...)
	for _, e := range exposed {
		if have[e] {
			continue
		}
		have[e] = true
		out = append(out, PortBinding{ContainerPort: e.Port, Proto: e.Proto})
	}
	return out
}

func sortBindings(bs []PortBinding) {
	sort.SliceStable(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		if a.HostIP != b.HostIP {
			return a.HostIP < b.HostIP
		}
		return a.HostPort < b.HostPort
	})
}

// PortLines is the output of `port CONTAINER [PRIVATE_PORT[/PROTO]]`: lines
// like "80/tcp -> 0.0.0.0:5000", sorted by container port. A non-empty filter
// ("80" or "80/udp") keeps only that port, and then the lines carry only the
// host side, as Docker prints them. ErrNoPublicPort is returned when the
// filter matches nothing.
func PortLines(bindings []PortBinding, filter string) ([]string, error) {
	bs := append([]PortBinding(nil), bindings...)
	sortBindings(bs)
	var want string
	if filter != "" {
		port, proto, _ := strings.Cut(filter, "/")
		if proto == "" {
			proto = "tcp"
		}
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return nil, InvalidPortf("invalid port: %s", filter)
		}
		want = strconv.Itoa(n) + "/" + strings.ToLower(proto)
	}
	var lines []string
	for _, b := range bs {
		if b.HostPort == 0 {
			continue
		}
		switch {
		case want == "":
			lines = append(lines, b.Private()+" -> "+b.HostAddr())
		case b.Private() == want:
			lines = append(lines, b.HostAddr())
		}
	}
	if want != "" && len(lines) == 0 {
		return nil, fmt.Errorf("no public port '%s' published: %w", want, ErrNoPublicPort)
	}
	return lines, nil
}

// ErrNoPublicPort is returned by PortLines for a private port that is not
// published ("Error: No public port '80/tcp' published for NAME" in Docker).
var ErrNoPublicPort = errors.New("no public port published")

// PortsColumn is the PORTS column of `ps`: published ports as
// "0.0.0.0:5000->5000/tcp", exposed but unpublished ones as "80/tcp", with
// runs of consecutive ports folded into ranges
// ("0.0.0.0:8000-8002->80-82/tcp") and entries joined by ", ", as the docker
// CLI shows them.
func PortsColumn(bindings []PortBinding, exposed []ExposedPort) string {
	type key struct {
		ip, proto string
		published bool
	}
	type run struct {
		key
		cStart, cEnd, hStart, hEnd int
	}
	bs := append([]PortBinding(nil), bindings...)
	sortBindings(bs)
	published := map[ExposedPort]bool{}
	var items []run
	for _, b := range bs {
		if b.HostPort == 0 {
			continue
		}
		published[ExposedPort{b.ContainerPort, b.Proto}] = true
		items = append(items, run{key{b.HostIP, b.Proto, true}, int(b.ContainerPort), int(b.ContainerPort), int(b.HostPort), int(b.HostPort)})
	}
	for _, e := range exposed {
		if !published[e] {
			published[e] = true
			items = append(items, run{key{"", e.Proto, false}, int(e.Port), int(e.Port), 0, 0})
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.published != b.published {
			return !a.published
		}
		if a.ip != b.ip {
			return a.ip < b.ip
		}
		if a.proto != b.proto {
			return a.proto < b.proto
		}
		return a.cStart < b.cStart
	})
	var runs []run
	for _, it := range items {
		if n := len(runs); n > 0 {
			last := &runs[n-1]
			if last.key == it.key && last.cEnd+1 == it.cStart && (!it.published || last.hEnd+1 == it.hStart) {
				last.cEnd, last.hEnd = it.cStart, it.hStart
				continue
			}
		}
		runs = append(runs, it)
	}
	parts := make([]string, 0, len(runs))
	for _, r := range runs {
		ctr := rangeString(r.cStart, r.cEnd) + "/" + r.proto
		if !r.published {
			parts = append(parts, ctr)
			continue
		}
		ip := r.ip
		if ip == "" {
			ip = "0.0.0.0"
		}
		parts = append(parts, ip+":"+rangeString(r.hStart, r.hEnd)+"->"+ctr)
	}
	return strings.Join(parts, ", ")
}

func rangeString(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return strconv.Itoa(a) + "-" + strconv.Itoa(b)
}

// APIBinding is one host side of a published port in the Engine API's
// NetworkSettings.Ports and HostConfig.PortBindings.
type APIBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// APIPorts is NetworkSettings.Ports of `inspect` (what `docker port`
// reads): "80/tcp" → its host bindings, with exposed but unpublished ports
// mapped to nil (JSON null), as Docker answers.
func APIPorts(bindings []PortBinding, exposed []ExposedPort) map[string][]APIBinding {
	out := map[string][]APIBinding{}
	for _, e := range exposed {
		out[e.String()] = nil
	}
	bs := append([]PortBinding(nil), bindings...)
	sortBindings(bs)
	for _, b := range bs {
		if b.HostPort == 0 {
			continue
		}
		ip := b.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		out[b.Private()] = append(out[b.Private()], APIBinding{HostIP: ip, HostPort: strconv.Itoa(int(b.HostPort))})
	}
	return out
}
