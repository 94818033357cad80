package network

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
)

// Link is a --link: the container linked to (by id) and the alias it is
// known by inside the linking container.
type Link struct {
	ID    string // the linked container's id (the daemon resolves the name)
	Name  string // its name
	Alias string // the alias; Name if empty
}

// HostsOptions are the per-container inputs of Manager.Hosts.
type HostsOptions struct {
	Links      []Link
	ExtraHosts []string // --add-host values, "name:ip" (ip may be IPv6)
	// HostHosts is the host's /etc/hosts, used as is for --net=host; the
	// file is read if nil.
	HostHosts []byte
}

// Hosts returns the /etc/hosts content of a container. Name resolution
// between containers is done with hosts files rather than an embedded DNS
// server (see the package doc): the file holds localhost, --add-host
// entries, --link aliases, every other container on the same user-defined
// networks by name and alias, and the container's own address and
// hostname. After a container joins or leaves a user network, rewrite the
// hosts files of Neighbours(id) too (WriteInPlace keeps bind mounts valid).
// A container:<x> container shares x's files, as in Docker; Hosts gives it
// only the localhost lines.
func (m *Manager) Hosts(ctx context.Context, id string, opts HostsOptions) ([]byte, error) {
	var extra []HostEntry
	for _, h := range opts.ExtraHosts {
		e, err := ParseExtraHost(h)
		if err != nil {
			return nil, err
		}
		extra = append(extra, e)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.sandboxes[id]
	if !ok {
		return nil, fmt.Errorf("hosts of %s: %w", id, ErrNoSandbox)
	}
	if sb.Mode.Kind == KindHost {
		b := opts.HostHosts
		if b == nil {
			var err error
			if b, err = os.ReadFile("/etc/hosts"); err != nil {
				return nil, fmt.Errorf("hosts of %s: %w", id, err)
			}
		}
		out := append([]byte(nil), b...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		return append(out, formatHosts(extra)...), nil
	}
	var entries []HostEntry
	entries = append(entries, extra...)
	for _, l := range opts.Links {
		o, ok := m.sandboxes[l.ID]
		if !ok {
			return nil, fmt.Errorf("could not get container for %s: %w", l.Name, ErrNoSandbox)
		}
		ip, ok := sharedAddr(sb, o)
		if !ok {
			continue
		}
		alias := l.Alias
		if alias == "" {
			alias = l.Name
		}
		names := []string{alias}
		if l.Name != alias {
			names = append(names, l.Name)
		}
		if o.Hostname != "" && o.Hostname != alias && o.Hostname != l.Name {
			names = append(names, o.Hostname)
		}
		entries = append(entries, HostEntry{IP: ip, Names: names})
	}
	for _, o := range m.peersLocked(sb) {
		for _, a := range sb.Attachments {
			if a.Network == DefaultNetwork {
				continue
			}
			if j, ok := o.attachment(a.Network); ok {
				oa := o.Attachments[j]
				names := dedupe(append([]string{o.Name}, oa.Aliases...))
				entries = append(entries, HostEntry{IP: oa.Address.Addr(), Names: names})
			}
		}
	}
	if p, ok := sb.Primary(); ok {
		names := []string{}
		if sb.Hostname != "" {
			names = append(names, sb.Hostname)
		}
		if sb.Name != "" && sb.Name != sb.Hostname {
			names = append(names, sb.Name)
		}
		names = append(names, p.Aliases...)
		if len(names) > 0 {
			entries = append(entries, HostEntry{IP: p.Address.Addr(), Names: dedupe(names)})
		}
	}
	return HostsFile(entries), nil
}

// sharedAddr is o's address on a network that sb is also on.
func sharedAddr(sb, o *Sandbox) (netip.Addr, bool) {
	for _, a := range sb.Attachments {
		if j, ok := o.attachment(a.Network); ok {
			return o.Attachments[j].Address.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// peersLocked are the other sandboxes that share a user-defined network
// with sb, sorted by name.
func (m *Manager) peersLocked(sb *Sandbox) []*Sandbox {
	var out []*Sandbox
	for _, o := range m.sandboxes {
		if o.ID == sb.ID {
			continue
		}
		for _, a := range sb.Attachments {
			if a.Network == DefaultNetwork {
				continue
			}
			if _, ok := o.attachment(a.Network); ok {
				out = append(out, o)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Neighbours returns the ids of the containers sharing a user-defined
// network with id: the ones whose hosts files change when id starts,
// stops, connects or disconnects.
func (m *Manager) Neighbours(id string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.sandboxes[id]
	if !ok {
		return nil
	}
	var ids []string
	for _, o := range m.peersLocked(sb) {
		ids = append(ids, o.ID)
	}
	return ids
}

// HostsFile renders a hosts file: the localhost lines every container gets,
// then entries, one per line, tab-separated like Docker's.
func HostsFile(entries []HostEntry) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::\tip6-localnet\n")
	b.WriteString("ff00::\tip6-mcastprefix\n")
	b.WriteString("ff02::1\tip6-allnodes\n")
	b.WriteString("ff02::2\tip6-allrouters\n")
	b.Write(formatHosts(entries))
	return b.Bytes()
}

func formatHosts(entries []HostEntry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		if !e.IP.IsValid() || len(e.Names) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, strings.Join(e.Names, " "))
	}
	return b.Bytes()
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0:0]
	for _, v := range s {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// DNSOptions are --dns, --dns-search and --dns-option.
type DNSOptions struct {
	Servers []string
	Search  []string
	Options []string
}

// ErrInvalidDNS is wrapped by ResolvConf's error about a bad --dns value.
var ErrInvalidDNS = errors.New("invalid dns option")

// defaultDNS is what Docker falls back to when the host names only
// localhost resolvers, which a container on a bridge cannot reach.
var defaultDNS = []string{"8.8.8.8", "8.8.4.4"}

// ResolvConf returns a container's /etc/resolv.conf, built like Docker's:
// the host's file (hostResolv) with its nameserver, search and options lines
// replaced by any given in dns; for a container with its own netns, host
// nameservers on localhost (127.0.0.0/8, ::1), which it cannot reach, are
// dropped, and if none remain Docker's public defaults are used. In host
// mode the host's servers are kept as they are.
func ResolvConf(hostResolv []byte, kind Kind, dns DNSOptions) ([]byte, error) {
	for _, s := range dns.Servers {
		if _, err := netip.ParseAddr(s); err != nil {
			return nil, fmt.Errorf("%s is not an ip address: %w", s, ErrInvalidDNS)
		}
	}
	var servers, search, options, other []string
	sc := bufio.NewScanner(bytes.NewReader(hostResolv))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				servers = append(servers, f[1])
			}
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		default:
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
				continue
			}
			other = append(other, line)
		}
	}
	if kind != KindHost {
		kept := servers[:0:0]
		for _, s := range servers {
			if a, err := netip.ParseAddr(s); err == nil && a.IsLoopback() {
				continue
			}
			kept = append(kept, s)
		}
		servers = kept
		if len(servers) == 0 {
			servers = defaultDNS
		}
	}
	if len(dns.Servers) > 0 {
		servers = dns.Servers
	}
	if len(dns.Search) > 0 {
		search = dns.Search
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(dns.Options) > 0 {
		options = dns.Options
	}
	var b bytes.Buffer
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	for _, l := range other {
		b.WriteString(l + "\n")
	}
	return b.Bytes(), nil
}

// WriteInPlace replaces a file's content without replacing the file, so a
// bind mount of it into a running container (/etc/hosts, resolv.conf) sees
// the new content; a rename would leave the container on the old inode.
func WriteInPlace(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
