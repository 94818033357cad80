package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	apiregistry "github.com/moby/moby/api/types/registry"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/image"
	fimage "github.com/fusebox/fusebox/image"
	"github.com/fusebox/fusebox/registry"
	"github.com/fusebox/fusebox/registry/auth"
)

// RegistryConfigName is the daemon's configuration file under its root,
// in Docker's daemon.json format; the daemon reads its registry keys
// ("registry-mirrors", "insecure-registries") at each registry request, so
// an edit takes effect without a restart.
const RegistryConfigName = "daemon.json"

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodPost, "/images/{name...}/push", d.imagePush)
		r.Handle(http.MethodPost, "/auth", d.auth)
		r.Handle(http.MethodGet, "/images/search", d.imageSearch)
		if _, err := d.RegistryConfig(); err != nil {
			d.log.Warn("registry configuration", "err", err)
		}
	})
	RegisterErrorStatus(registry.ErrNotFound, http.StatusNotFound)
	RegisterErrorStatus(registry.ErrNoSuchLocalImage, http.StatusNotFound)
	RegisterErrorStatus(registry.ErrUnauthorized, http.StatusUnauthorized)
	RegisterErrorStatus(registry.ErrUnsupported, http.StatusBadRequest)
	RegisterErrorStatus(registry.ErrDigestMismatch, http.StatusBadRequest)
	RegisterErrorStatus(fimage.ErrInvalidReference, http.StatusBadRequest)
}

// RegistryConfig is the daemon's registry configuration: <root>/daemon.json
// plus the command-line flags (Config.Registry).
func (d *Daemon) RegistryConfig() (registry.Config, error) {
	c, err := registry.LoadConfigFile(filepath.Join(d.root, RegistryConfigName))
	if err != nil {
		return c, err
	}
	c = c.Merge(d.cfg.Registry)
	return c, c.Validate()
}

// registryAuth reads the X-Registry-Auth header the docker CLI sends.
func registryAuth(r *http.Request) (*registry.AuthConfig, error) {
	a, err := auth.DecodeHeader(r.Header.Get(apiregistry.AuthHeader))
	if err != nil {
		return nil, BadParameterf("%v", err)
	}
	return &a, nil
}

// lazyProgress starts Docker's JSON progress stream on the first event, so
// that a failure before any progress (no such tag, bad credentials) is an
// HTTP error status, which the docker CLI shows as "Error response from
// daemon: …", as Docker's own daemon does.
type lazyProgress struct {
	w  http.ResponseWriter
	mu sync.Mutex
	pw *progressWriter
}

func (l *lazyProgress) report(e registry.Event) {
	m := jsonstream.Message{ID: e.ID, Status: e.Status}
	if e.Total > 0 {
		m.Progress = &jsonstream.Progress{Current: e.Current, Total: e.Total}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pw == nil {
		l.pw = newProgressWriter(l.w)
	}
	l.pw.send(m)
}

// finish ends a stream: an error goes into the stream once it has started
// (the CLI prints it and exits 1), else it is the handler's error.
func (l *lazyProgress) finish(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil || l.pw == nil {
		return err
	}
	l.pw.fail(err)
	return nil
}

// pullReference builds what POST /images/create?fromImage=&tag= asks for:
// a tag or digest in either parameter; neither means every tag.
func pullReference(from, tag string) (ref reference.Named, all bool, err error) {
	named, err := reference.ParseNormalizedNamed(from)
	if err != nil {
		if _, perr := fimage.ParseReference(from); perr != nil {
			return nil, false, BadParameterf("invalid reference format: %s", strings.TrimPrefix(perr.Error(), fimage.ErrInvalidReference.Error()+": "))
		}
		return nil, false, BadParameterf("invalid reference format: %v", err)
	}
	if tag == "" {
		_, tagged := named.(reference.Tagged)
		_, digested := named.(reference.Digested)
		return named, !tagged && !digested, nil
	}
	if strings.Contains(tag, ":") {
		r, err := reference.ParseNormalizedNamed(reference.TrimNamed(named).String() + "@" + tag)
		if err != nil {
			return nil, false, BadParameterf("invalid reference format: %v", err)
		}
		return r, false, nil
	}
	r, err := reference.WithTag(reference.TrimNamed(named), tag)
	if err != nil {
		return nil, false, BadParameterf("invalid reference format: %v", err)
	}
	return r, false, nil
}

// imagePull is POST /images/create?fromImage=NAME&tag=TAG[&platform=os/arch].
func (d *Daemon) imagePull(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ref, all, err := pullReference(q.Get("fromImage"), q.Get("tag"))
	if err != nil {
		return err
	}
	platform := q.Get("platform")
	if _, err := image.ParsePlatform(platform); err != nil {
		return BadParameterf("%v", err)
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	cfg, err := d.RegistryConfig()
	if err != nil {
		return err
	}
	lp := &lazyProgress{w: w}
	pulled, err := registry.Pull(r.Context(), d.store, ref, registry.PullOptions{
		Config: cfg, Auth: auth, Platform: platform, AllTags: all, Progress: lp.report,
	})
	if errors.Is(err, registry.ErrUnauthorized) {
		// As Docker: a 401 would make the docker CLI prompt for a login.
		err = NotFoundf("pull access denied for %s, repository does not exist or may require 'login': %v", reference.FamiliarName(ref), err)
	}
	if err != nil {
		d.log.Error("pull failed", "ref", ref.String(), "err", err)
		return lp.finish(err)
	}
	for _, p := range pulled {
		d.log.Info("pulled image", "ref", p.Ref.String(), "id", p.ID, "digest", p.Digest)
	}
	return nil
}

// imagePush is POST /images/{name}/push?tag=TAG; no tag pushes every tag
// of the repository.
func (d *Daemon) imagePush(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	named, err := reference.ParseNormalizedNamed(r.PathValue("name"))
	if err != nil {
		return BadParameterf("invalid reference format: %v", err)
	}
	var refs []reference.Named
	tag := r.URL.Query().Get("tag")
	if t, ok := named.(reference.Tagged); ok && tag == "" {
		tag = t.Tag()
	}
	repo := reference.TrimNamed(named)
	if tag != "" {
		t, err := reference.WithTag(repo, tag)
		if err != nil {
			return BadParameterf("invalid reference format: %v", err)
		}
		refs = append(refs, t)
	} else {
		tags, err := d.store.Tags(ctx)
		if err != nil {
			return err
		}
		for _, t := range tags {
			if n, err := reference.ParseNormalizedNamed(t.Ref); err == nil && reference.TrimNamed(n).String() == repo.String() {
				refs = append(refs, n)
			}
		}
		if len(refs) == 0 {
			return NotFoundf("An image does not exist locally with the tag: %s", reference.FamiliarName(repo))
		}
	}
	for _, ref := range refs {
		if _, err := d.store.Tag(ctx, ref.String()); errors.Is(err, cas.ErrNotFound) {
			return NotFoundf("An image does not exist locally with the tag: %s", reference.FamiliarName(ref))
		}
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	cfg, err := d.RegistryConfig()
	if err != nil {
		return err
	}
	lp := &lazyProgress{w: w}
	for _, ref := range refs {
		res, err := registry.Push(ctx, d.store, ref, registry.PushOptions{Config: cfg, Auth: auth, TempDir: d.tmpDir(), Progress: lp.report})
		if err != nil {
			d.log.Error("push failed", "ref", ref.String(), "err", err)
			return lp.finish(err)
		}
		d.log.Info("pushed image", "ref", ref.String(), "digest", res.Digest)
	}
	return nil
}

// auth is POST /auth: the docker CLI's login checks credentials here.
func (d *Daemon) auth(w http.ResponseWriter, r *http.Request) error {
	var a registry.AuthConfig
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
		return BadParameterf("invalid login request: %v", err)
	}
	cfg, err := d.RegistryConfig()
	if err != nil {
		return err
	}
	if err := registry.Login(r.Context(), cfg, a); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, apiregistry.AuthResponse{Status: "Login Succeeded"})
}

// imageSearch is GET /images/search?term=&limit=&filters=.
func (d *Daemon) imageSearch(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	term := q.Get("term")
	if term == "" {
		return BadParameterf("term is required")
	}
	opts := registry.SearchOptions{}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return BadParameterf("invalid limit %q", l)
		}
		if n < 1 || n > 100 {
			return BadParameterf("limit %d is outside the range of [1, 100]", n)
		}
		opts.Limit = n
	}
	if raw := q.Get("filters"); raw != "" {
		var f map[string]map[string]bool
		if err := json.Unmarshal([]byte(raw), &f); err != nil {
			return BadParameterf("invalid filter: %v", err)
		}
		for k, vs := range f {
			for v := range vs {
				switch k {
				case "stars":
					n, err := strconv.Atoi(v)
					if err != nil {
						return BadParameterf("invalid filter 'stars=%s'", v)
					}
					opts.Stars = max(opts.Stars, n)
				case "is-official":
					b, err := strconv.ParseBool(v)
					if err != nil {
						return BadParameterf("invalid filter 'is-official=%s'", v)
					}
					opts.Official = &b
				case "is-automated":
					b, err := strconv.ParseBool(v)
					if err != nil {
						return BadParameterf("invalid filter 'is-automated=%s'", v)
					}
					if b {
						return WriteJSON(w, http.StatusOK, []registry.SearchResult{})
					}
				default:
					return BadParameterf("invalid filter '%s'", k)
				}
			}
		}
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	cfg, err := d.RegistryConfig()
	if err != nil {
		return err
	}
	opts.Config, opts.Auth = cfg, auth
	res, err := registry.Search(r.Context(), term, opts)
	if errors.Is(err, registry.ErrUnauthorized) {
		// Not 401, on which the docker CLI would prompt for a login.
		return fmt.Errorf("%v", err)
	}
	if err != nil {
		return err
	}
	if res == nil {
		res = []registry.SearchResult{}
	}
	return WriteJSON(w, http.StatusOK, res)
}
