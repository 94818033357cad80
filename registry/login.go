package registry

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/fusebox/fusebox/registry/auth"
)

// Login checks credentials against a registry as `docker login` does
// through POST /auth: ping the registry's /v2/, then authenticate (basic,
// or a token exchange) and ask /v2/ again, which must answer 200. The
// server is a login SERVER argument (NormalizeServer's forms); Docker Hub
// is reached through the first mirror when mirrors are configured, since
// that is where this daemon sends its pulls. Nothing is stored: the client
// keeps the credentials.
func Login(ctx context.Context, cfg Config, creds AuthConfig) error {
	server := auth.NormalizeServer(creds.ServerAddress)
	host, plain := server, false
	if server == auth.IndexServer {
		host = dockerHubHost
		if len(cfg.Mirrors) > 0 {
			var err error
			if host, plain, err = parseMirror(cfg.Mirrors[0]); err != nil {
				return err
			}
		}
	}
	reg, plain, err := cfg.registryFor(host, plain)
	if err != nil {
		return fmt.Errorf("%w: registry %q: %v", ErrBadConfig, host, err)
	}
	guard := &httpGuard{host: reg.RegistryStr(), allowed: plain, inner: baseTransport}
	t, err := transport.NewWithContext(ctx, reg, authenticator(&creds), guard, nil)
	if err != nil {
		return loginError(host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return loginError(host, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return loginError(host, err)
	}
	return nil
}

func loginError(host string, err error) error {
	err = classifyTransportErr(host, err)
	return fmt.Errorf("login to %s: %w", host, err)
}
