// Package auth names and carries registry credentials as Docker does: the
// key a registry's login is kept under in config.json (ServerKey,
// NormalizeServer, SearchServerKey) and the X-Registry-Auth header that
// takes a login to the daemon. The CLI links it without the registry
// client.
package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types/registry"
)

// DockerHub is the domain of Docker Hub in normalised references.
const DockerHub = "docker.io"

// IndexServer is the key Docker's config.json keeps Docker Hub's
// credentials under.
const IndexServer = "https://index.docker.io/v1/"

// ServerKey is the config.json key credentials for the registry at domain
// (a normalised reference's domain) are kept under: IndexServer for Docker
// Hub, the host otherwise. It is what the docker CLI uses, so both tools
// find each other's logins.
func ServerKey(domain string) string {
	if domain == DockerHub {
		return IndexServer
	}
	return domain
}

// NormalizeServer turns a login SERVER argument into its config.json key:
// empty or any Docker Hub spelling is IndexServer, a URL is reduced to its
// host.
func NormalizeServer(s string) string {
	switch strings.TrimSuffix(s, "/") {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1", "https://index.docker.io", "https://registry-1.docker.io":
		return IndexServer
	}
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return strings.TrimSuffix(s, "/")
}

// SearchServerKey is the config.json key of the registry a search term
// goes to (see Search): its host when it names one, else IndexServer.
func SearchServerKey(term string) string {
	if first, _, ok := strings.Cut(term, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return IndexServer
}

// DecodeHeader decodes an X-Registry-Auth header: base64url (padded or
// not; plain base64 accepted too) JSON. An empty header is no credentials.
func DecodeHeader(h string) (registry.AuthConfig, error) {
	var a registry.AuthConfig
	if h == "" {
		return a, nil
	}
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return a, fmt.Errorf("invalid X-Registry-Auth header: %w", err)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("invalid X-Registry-Auth header: %w", err)
	}
	return a, nil
}

// EncodeHeader is the inverse of DecodeHeader, for clients.
func EncodeHeader(a registry.AuthConfig) (string, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}
