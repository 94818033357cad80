package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/registry"
)

// SearchResult is one row of `search`: Docker's type.
type SearchResult = registry.SearchResult

// SearchOptions tunes Search.
type SearchOptions struct {
	Config Config
	Auth   *AuthConfig
	// Limit is the most results returned; 0 means 25, as Docker.
	Limit int
	// Stars keeps results with at least this many stars; Official, when
	// set, keeps only official (true) or only unofficial (false) ones.
	Stars    int
	Official *bool
}

// catalogPages bounds how much of a catalog a search reads.
const catalogPages = 100

// Search finds repositories whose name contains term. It asks the
// registry's search API (GET /v1/search, Docker Hub's) and, when the
// registry has none, filters its catalog (GET /v2/_catalog). The registry
// is the one term names ("127.0.0.1:5000/app"), else the first mirror,
// else Docker Hub. Official means a Docker Hub library image.
func Search(ctx context.Context, term string, opts SearchOptions) ([]SearchResult, error) {
	if opts.Limit <= 0 {
		opts.Limit = 25
	}
	if opts.Limit > 100 {
		return nil, fmt.Errorf("limit %d is outside the range of [1, 100]", opts.Limit)
	}
	host, plain, q, hub, err := opts.Config.searchRegistry(term)
	if err != nil {
		return nil, err
	}
	reg, plain, err := opts.Config.registryFor(host, plain)
	if err != nil {
		return nil, fmt.Errorf("%w: registry %q: %v", ErrBadConfig, host, err)
	}
	guard := &httpGuard{host: reg.RegistryStr(), allowed: plain, inner: baseTransport}
	t, err := transport.NewWithContext(ctx, reg, authenticator(opts.Auth), guard, []string{"registry:catalog:*"})
	if err != nil {
		return nil, classifyTransportErr(host, err)
	}
	hc := &http.Client{Transport: t}
	results, err := searchAPI(ctx, hc, reg, q, opts.Limit)
	if errors.Is(err, ErrNotFound) {
		results, err = searchCatalog(ctx, hc, reg, q, hub)
	}
	if err != nil {
		return nil, err
	}
	var out []SearchResult
	for _, r := range results {
		if r.StarCount < opts.Stars || (opts.Official != nil && r.IsOfficial != *opts.Official) {
			continue
		}
		if !hub && !strings.HasPrefix(r.Name, host+"/") {
			r.Name = host + "/" + r.Name
		}
		out = append(out, r)
		if len(out) == opts.Limit {
			break
		}
	}
	return out, nil
}

func searchAPI(ctx context.Context, hc *http.Client, reg name.Registry, q string, limit int) ([]SearchResult, error) {
	u := "https://" + reg.RegistryStr() + "/v1/search?q=" + url.QueryEscape(q) + "&n=" + strconv.Itoa(limit)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, classifyTransportErr(reg.RegistryStr(), err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, classifyTransportErr(reg.RegistryStr(), err)
	}
	var body registry.SearchResults
	if err := decodeJSON(resp.Body, &body); err != nil {
		// Not a search API (some registries answer 200 with HTML).
		return nil, fmt.Errorf("search API: %w", ErrNotFound)
	}
	return body.Results, nil
}

// searchCatalog pages through /v2/_catalog and keeps the names containing
// q, sorted.
func searchCatalog(ctx context.Context, hc *http.Client, reg name.Registry, q string, hub bool) ([]SearchResult, error) {
	var names []string
	last := ""
	for page := 0; page < catalogPages; page++ {
		u := "https://" + reg.RegistryStr() + "/v2/_catalog?n=1000"
		if last != "" {
			u += "&last=" + url.QueryEscape(last)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, classifyTransportErr(reg.RegistryStr(), err)
		}
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			resp.Body.Close()
			return nil, classifyTransportErr(reg.RegistryStr(), err)
		}
		var body struct {
			Repositories []string `json:"repositories"`
		}
		err = decodeJSON(resp.Body, &body)
		more := resp.Header.Get("Link") != ""
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("catalog of %s: %w", reg.RegistryStr(), err)
		}
		names = append(names, body.Repositories...)
		if !more || len(body.Repositories) == 0 {
			break
		}
		last = body.Repositories[len(body.Repositories)-1]
	}
	var out []SearchResult
	for _, n := range names {
		if !strings.Contains(n, q) {
			continue
		}
		r := SearchResult{Name: n}
		if hub {
			if short, ok := strings.CutPrefix(n, "library/"); ok {
				r.Name, r.IsOfficial = short, true
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
