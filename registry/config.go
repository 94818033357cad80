package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/fusebox/fusebox/registry/auth"
)

// dockerHubHost is where Docker Hub's registry API lives.
const dockerHubHost = "registry-1.docker.io"

// Config says which hosts a reference reaches and how. The zero value is
// Docker's default: docker.io over HTTPS, plain HTTP only to loopback.
type Config struct {
	// Mirrors are tried in order, before Docker Hub itself, for pulls and
	// searches of docker.io references, as Docker's registry-mirrors are.
	// Each is a URL ("http://127.0.0.1:5000") or a host[:port]; a mirror
	// given with http:// is spoken to over plain HTTP.
	Mirrors []string `json:"registry-mirrors,omitempty"`
	// Insecure lists registries (host[:port]) and networks (CIDR) that may
	// be reached over plain HTTP, like Docker's --insecure-registry.
	Insecure []string `json:"insecure-registries,omitempty"`
}

// ErrBadConfig is returned for a registry configuration that cannot be used.
var ErrBadConfig = errors.New("invalid registry configuration")

// LoadConfigFile reads the registry keys of a Docker-style daemon.json
// ("registry-mirrors", "insecure-registries"); other keys are ignored and
// a missing file is the zero Config.
func LoadConfigFile(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %s: %v", ErrBadConfig, path, err)
	}
	return c, c.Validate()
}

// Merge returns c with other's mirrors and insecure registries appended.
func (c Config) Merge(other Config) Config {
	return Config{
		Mirrors:  append(append([]string(nil), c.Mirrors...), other.Mirrors...),
		Insecure: append(append([]string(nil), c.Insecure...), other.Insecure...),
	}
}

// Validate checks that every mirror and insecure entry parses.
func (c Config) Validate() error {
	for _, m := range c.Mirrors {
		if _, _, err := parseMirror(m); err != nil {
			return err
		}
	}
	for _, s := range c.Insecure {
		if strings.Contains(s, "/") {
			if _, _, err := net.ParseCIDR(s); err != nil {
				return fmt.Errorf("%w: insecure registry %q: %v", ErrBadConfig, s, err)
			}
			continue
		}
		if _, err := name.NewRegistry(s, name.StrictValidation); err != nil {
			return fmt.Errorf("%w: insecure registry %q: %v", ErrBadConfig, s, err)
		}
	}
	return nil
}

// parseMirror splits a mirror into its host and whether it asked for HTTP.
func parseMirror(m string) (host string, plainHTTP bool, err error) {
	s := m
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || strings.Trim(u.Path, "/") != "" {
		return "", false, fmt.Errorf("%w: mirror %q: want http(s)://host[:port]", ErrBadConfig, m)
	}
	return u.Host, u.Scheme == "http", nil
}

// AllowsHTTP reports whether host (host[:port]) may be reached over plain
// HTTP: loopback always, others when listed in Insecure by name or by
// network.
func (c Config) AllowsHTTP(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	for _, s := range c.Insecure {
		if s == host || s == h {
			return true
		}
		if _, n, err := net.ParseCIDR(s); err == nil && ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// endpoint is one registry a repository can be reached at.
type endpoint struct {
	repo   name.Repository
	mirror bool
	// plainHTTP: the configuration allows HTTP to this host.
	plainHTTP bool
}

func (c Config) registryFor(host string, forceHTTP bool) (name.Registry, bool, error) {
	plain := forceHTTP || c.AllowsHTTP(host)
	opts := []name.Option{name.StrictValidation}
	if plain {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	return reg, plain, err
}

// endpoints lists where a normalised reference's repository is reached, in
// the order to try: the mirrors for docker.io, then the registry itself.
// Pushes use only the last (push=true skips the mirrors).
func (c Config) endpoints(ref reference.Named, push bool) ([]endpoint, error) {
	domain, path := reference.Domain(ref), reference.Path(ref)
	var out []endpoint
	if domain == auth.DockerHub && !push {
		for _, m := range c.Mirrors {
			host, plain, err := parseMirror(m)
			if err != nil {
				return nil, err
			}
			reg, plain, err := c.registryFor(host, plain)
			if err != nil {
				return nil, fmt.Errorf("%w: mirror %q: %v", ErrBadConfig, m, err)
			}
			out = append(out, endpoint{repo: reg.Repo(path), mirror: true, plainHTTP: plain})
		}
	}
	host := domain
	if domain == auth.DockerHub {
		host = dockerHubHost
	}
	reg, plain, err := c.registryFor(host, false)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", domain, err)
	}
	return append(out, endpoint{repo: reg.Repo(path), plainHTTP: plain}), nil
}

// searchRegistry is the registry GET /images/search asks for term, and the
// term without its registry part: a term naming a host ("127.0.0.1:5000/app")
// searches that host, any other the first mirror or Docker Hub.
func (c Config) searchRegistry(term string) (host string, plainHTTP bool, rest string, dockerHub bool, err error) {
	if first, after, ok := strings.Cut(term, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first, c.AllowsHTTP(first), after, false, nil
	}
	if len(c.Mirrors) > 0 {
		h, plain, err := parseMirror(c.Mirrors[0])
		return h, plain || c.AllowsHTTP(h), term, true, err
	}
	return dockerHubHost, false, term, true, nil
}
