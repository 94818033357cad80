package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/registry"
)

// Sentinel errors; every error of this package wraps at most one, so that
// the daemon maps them to Docker's status codes with errors.Is.
var (
	// ErrNotFound: the registry has no such repository, tag, manifest or
	// blob.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the registry refused the credentials (or asked for
	// some and got none).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnreachable: nothing answered at the registry's address.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrInsecure: the registry speaks only plain HTTP and is not allowed
	// to (see Config.Insecure).
	ErrInsecure = errors.New("registry is not allowed over plain HTTP")
	// ErrUnsupported: a manifest or layer kind fusebox does not handle
	// (schema 1, foreign layers, no manifest for the platform).
	ErrUnsupported = errors.New("unsupported")
)

// AuthConfig is Docker's credential record, as the X-Registry-Auth header
// and POST /auth carry it.
type AuthConfig = registry.AuthConfig

// authenticator turns Docker's record into ggcr's: username and password
// (or the "auth" field), an identity token, or a registry token.
func authenticator(a *AuthConfig) authn.Authenticator {
	if a == nil || (a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "") {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	})
}

// httpGuard refuses plain-HTTP requests to the registry host unless the
// configuration allows them. go-containerregistry falls back to HTTP for
// private networks on its own; Docker does not, and neither does fusebox.
type httpGuard struct {
	host    string
	allowed bool
	inner   http.RoundTripper
}

var _ http.RoundTripper = (*httpGuard)(nil)

func (g *httpGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && r.URL.Host == g.host && !g.allowed {
		return nil, fmt.Errorf("%w: %s (add it with --insecure-registry)", ErrInsecure, g.host)
	}
	return g.inner.RoundTrip(r)
}

// baseTransport is shared by every session: keep-alive, no proxy (the
// registries fusebox talks to in tests are on loopback).
var baseTransport http.RoundTripper = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 30e9, KeepAlive: 30e9}).DialContext,
	MaxIdleConnsPerHost:   8,
	TLSHandshakeTimeout:   10e9,
	ResponseHeaderTimeout: 60e9,
	ExpectContinueTimeout: 1e9,
}

// session is an authenticated connection to one repository.
type session struct {
	repo name.Repository
	hc   *http.Client
}

// openSession pings the registry, picks its scheme and authenticates for
// the given scope (transport.PullScope or transport.PushScope).
func openSession(ctx context.Context, ep endpoint, auth *AuthConfig, action string) (*session, error) {
	reg := ep.repo.Registry
	guard := &httpGuard{host: reg.RegistryStr(), allowed: ep.plainHTTP, inner: baseTransport}
	scopes := []string{ep.repo.Scope(action)}
	t, err := transport.NewWithContext(ctx, reg, authenticator(auth), guard, scopes)
	if err != nil {
		return nil, classifyTransportErr(reg.RegistryStr(), err)
	}
	return &session{repo: ep.repo, hc: &http.Client{Transport: t}}, nil
}

// classifyTransportErr gives a failed ping or token exchange one clear line
// and a sentinel.
func classifyTransportErr(host string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, ErrInsecure) {
		return fmt.Errorf("%w: %s (add it with --insecure-registry)", ErrInsecure, host)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return registryError(te)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, host, oe)
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, host, de)
	}
	return fmt.Errorf("registry %s: %w", host, err)
}

// registryError maps a registry's error body to a sentinel, keeping the
// registry's own words ("manifest unknown").
func registryError(te *transport.Error) error {
	msg := te.Error()
	if len(te.Errors) > 0 {
		var parts []string
		for _, d := range te.Errors {
			parts = append(parts, strings.ToLower(string(d.Code))+": "+d.Message)
		}
		msg = strings.Join(parts, "; ")
		msg = strings.ReplaceAll(msg, "_", " ")
	}
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrUnauthorized, strings.TrimPrefix(msg, "unauthorized: "))
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, msg)
	}
	return errors.New(msg)
}

func (s *session) url(path string) string {
	// The scheme is rewritten to the pinged one by the transport.
	return "https://" + s.repo.RegistryStr() + "/v2/" + s.repo.RepositoryStr() + path
}

// do sends a request and checks its status; a registry error becomes one
// of the sentinels.
func (s *session) do(ctx context.Context, method, url string, body io.Reader, hdr http.Header, codes ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, classifyTransportErr(s.repo.RegistryStr(), err)
	}
	if err := transport.CheckError(resp, codes...); err != nil {
		resp.Body.Close()
		return nil, classifyTransportErr(s.repo.RegistryStr(), err)
	}
	return resp, nil
}
