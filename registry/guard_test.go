package registry

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/fusebox/fusebox/internal/registrytest"
)

// TestInsecureRefused: a registry that only speaks HTTP is refused unless
// the configuration allows HTTP to it. Loopback always is, so the test
// reaches a loopback registry through an endpoint built as for any other
// host; go-containerregistry alone would fall back to HTTP.
func TestInsecureRefused(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := context.Background()
	cfg := Config{}
	r, _, err := cfg.registryFor(reg.Host, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = openSession(ctx, endpoint{repo: r.Repo("busybox"), plainHTTP: false}, nil, transport.PullScope)
	if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "--insecure-registry") || strings.Contains(err.Error(), "\n") {
		t.Errorf("plain HTTP to a registry not listed: %v", err)
	}
	if _, err := openSession(ctx, endpoint{repo: r.Repo("busybox"), plainHTTP: true}, nil, transport.PullScope); err != nil {
		t.Errorf("plain HTTP to an allowed registry: %v", err)
	}
}
