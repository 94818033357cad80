package netspec

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// HostEntry is one line of a hosts file: an address and its names.
type HostEntry struct {
	IP    netip.Addr
	Names []string
}

// ErrInvalidHost is wrapped by errors about a malformed --add-host.
var ErrInvalidHost = errors.New("invalid --add-host value")

// ParseExtraHost parses an --add-host value, "name:ip" or "name=ip"; the
// special ip "host-gateway" is refused (fusebox has no such setting).
func ParseExtraHost(s string) (HostEntry, error) {
	name, ip, ok := strings.Cut(s, "=")
	if !ok {
		name, ip, ok = strings.Cut(s, ":")
	}
	if !ok || name == "" || ip == "" {
		return HostEntry{}, fmt.Errorf("bad format for add-host: %q: %w", s, ErrInvalidHost)
	}
	a, err := netip.ParseAddr(strings.Trim(ip, "[]"))
	if err != nil {
		return HostEntry{}, fmt.Errorf("invalid IP address in add-host: %q: %w", ip, ErrInvalidHost)
	}
	return HostEntry{IP: a, Names: []string{name}}, nil
}
