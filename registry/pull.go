package registry

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/image"
)

// PullOptions tunes Pull. The zero value pulls linux/GOARCH anonymously
// from the reference's own registry.
type PullOptions struct {
	Config Config
	Auth   *AuthConfig
	// Platform is "os/arch[/variant]"; empty means linux/GOARCH.
	Platform string
	// AllTags pulls every tag of the repository (pull -a); the reference
	// must then carry no tag or digest of its own.
	AllTags bool
	// Progress receives Docker's status lines.
	Progress Reporter
	// Jobs is how many layers download at once; 0 means 3, as Docker.
	Jobs int
}

// Pulled is one image a pull stored.
type Pulled struct {
	// Ref is what was pulled: name:tag or name@digest.
	Ref reference.Named
	ID  digest.Digest
	// Digest is the manifest (or manifest list) digest the reference
	// resolved to, recorded as the image's repo digest.
	Digest digest.Digest
	// Updated is true when the tag now points at a different image than
	// before (Docker's "Downloaded newer image").
	Updated bool
}

// Pull fetches ref (normalised: docker.io/library/busybox:latest) into the
// store and tags it. For docker.io the configured mirrors are tried first.
func Pull(ctx context.Context, store *cas.Store, ref reference.Named, opts PullOptions) ([]Pulled, error) {
	report := opts.Progress.sync()
	opts.Progress = report
	platform, err := image.ParsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	eps, err := opts.Config.endpoints(ref, false)
	if err != nil {
		return nil, err
	}
	var firstAnswer, last error
	for _, ep := range eps {
		pulled, err := pullFrom(ctx, store, ep, ref, platform, opts)
		if err == nil {
			return pulled, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		last = err
		// A registry that answered ("manifest unknown", "unauthorized")
		// says more than a later one that could not be reached.
		if firstAnswer == nil && !errors.Is(err, ErrUnreachable) {
			firstAnswer = err
		}
	}
	if firstAnswer != nil {
		return nil, firstAnswer
	}
	return nil, last
}

func pullFrom(ctx context.Context, store *cas.Store, ep endpoint, ref reference.Named, platform ocispec.Platform, opts PullOptions) ([]Pulled, error) {
	s, err := openSession(ctx, ep, opts.Auth, transport.PullScope)
	if err != nil {
		return nil, err
	}
	if !opts.AllTags {
		p, err := pullOne(ctx, store, s, ref, platform, opts)
		if err != nil {
			return nil, err
		}
		status := "Status: Image is up to date for " + image.Familiar(ref)
		if p.Updated {
			status = "Status: Downloaded newer image for " + image.Familiar(ref)
		}
		opts.Progress(Event{Status: status})
		return []Pulled{p}, nil
	}
	if _, ok := ref.(reference.Tagged); ok {
		return nil, fmt.Errorf("tag can't be used with --all-tags/-a")
	}
	if _, ok := ref.(reference.Digested); ok {
		return nil, fmt.Errorf("digest can't be used with --all-tags/-a")
	}
	tags, err := s.tags(ctx)
	if err != nil {
		return nil, err
	}
	var out []Pulled
	updated := false
	for _, t := range tags {
		tagged, err := reference.WithTag(reference.TrimNamed(ref), t)
		if err != nil {
			return nil, err
		}
		p, err := pullOne(ctx, store, s, tagged, platform, opts)
		if err != nil {
			return nil, err
		}
		updated = updated || p.Updated
		out = append(out, p)
	}
	name := reference.FamiliarName(ref)
	if updated {
		opts.Progress(Event{Status: "Status: Downloaded newer image for " + name})
	} else {
		opts.Progress(Event{Status: "Status: Image is up to date for " + name})
	}
	return out, nil
}

// tags lists the repository's tags (GET /v2/<name>/tags/list).
func (s *session) tags(ctx context.Context) ([]string, error) {
	resp, err := s.do(ctx, http.MethodGet, s.url("/tags/list"), nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := decodeJSON(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("tags of %s: %w", s.repo, err)
	}
	return body.Tags, nil
}

// pullOne pulls one tag or digest over an open session.
func pullOne(ctx context.Context, store *cas.Store, s *session, ref reference.Named, platform ocispec.Platform, opts PullOptions) (p Pulled, err error) {
	report := opts.Progress
	p.Ref = ref
	tagOrDigest := "latest"
	if d, ok := ref.(reference.Digested); ok {
		tagOrDigest = d.Digest().String()
	} else if t, ok := ref.(reference.Tagged); ok {
		tagOrDigest = t.Tag()
	}
	refDigest, m, mBytes, err := s.resolve(ctx, tagOrDigest, platform)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return p, fmt.Errorf("manifest for %s not found: %w", image.Familiar(ref), err)
		}
		return p, err
	}
	// After the manifest, as Docker does: until then a failure is an error
	// of the request, not of a stream.
	report(Event{ID: tagOrDigest, Status: "Pulling from " + reference.Path(ref)})
	p.Digest = refDigest
	cfgBytes, err := s.getBlob(ctx, m.Config)
	if err != nil {
		return p, fmt.Errorf("config of %s: %w", image.Familiar(ref), err)
	}
	cfg, err := image.ParseConfig(cfgBytes)
	if err != nil {
		return p, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return p, fmt.Errorf("%w: manifest has %d layers, config %d diff_ids", image.ErrBadConfig, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	p.ID = m.Config.Digest

	lease := store.NewLease()
	defer func() {
		if rerr := lease.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
			err = rerr
		}
	}()
	_, imgErr := store.Image(ctx, p.ID)
	haveImage := imgErr == nil
	if !haveImage {
		if err := pullLayers(ctx, store, s, m.Layers, cfg.RootFS.DiffIDs, lease, opts); err != nil {
			return p, err
		}
	}

	// Everything is stored and held: now the config, the record, the tag.
	repoDigest := reference.TrimNamed(ref).String() + "@" + refDigest.String()
	if !haveImage {
		_, blobErr := store.Blob(ctx, p.ID)
		if _, err := store.PutBlob(ctx, cfgBytes); err != nil {
			return p, err
		}
		// Manifest is the image's own manifest; the repo digest is what the
		// reference resolved to (a list's digest), as Docker records it.
		rec := cas.ImageRecord{ID: p.ID, DiffIDs: cfg.RootFS.DiffIDs, Manifest: digest.FromBytes(mBytes), RepoDigests: []string{repoDigest}}
		if cfg.Created != nil {
			rec.Created = *cfg.Created
		}
		if err := store.PutImage(ctx, rec); errors.Is(err, cas.ErrExists) {
			haveImage = true // a concurrent pull stored it first
		} else if err != nil {
			if blobErr != nil {
				_ = store.DeleteBlob(context.WithoutCancel(ctx), p.ID)
			}
			return p, err
		}
	}
	if haveImage {
		if err := store.AddRepoDigest(ctx, p.ID, repoDigest); err != nil {
			return p, err
		}
	}
	rememberBlobs(ctx, store, m.Layers, cfg.RootFS.DiffIDs, s.repo.Name())
	if _, ok := ref.(reference.Digested); ok {
		p.Updated = !haveImage
	} else {
		old, err := store.Tag(ctx, ref.String())
		if err != nil && !errors.Is(err, cas.ErrNotFound) {
			return p, err
		}
		if err := store.SetTag(ctx, ref.String(), p.ID); err != nil {
			return p, err
		}
		p.Updated = old != p.ID
	}
	report(Event{Status: "Digest: " + refDigest.String()})
	return p, nil
}

// pullLayers ingests the layers the store lacks, a few at a time, all under
// the lease; the first failure cancels the others.
func pullLayers(ctx context.Context, store *cas.Store, s *session, layers []ocispec.Descriptor, diffIDs []digest.Digest, lease *cas.Lease, opts PullOptions) error {
	report := opts.Progress
	type job struct {
		desc   ocispec.Descriptor
		diffID digest.Digest
	}
	var jobs []job
	seen := map[digest.Digest]bool{}
	for i, l := range layers {
		id := shortID(l.Digest)
		if seen[diffIDs[i]] {
			continue
		}
		seen[diffIDs[i]] = true
		// Hold first, then look: a layer seen here cannot be collected
		// before the image record references it.
		lease.Hold(diffIDs[i])
		if _, err := store.Layer(ctx, diffIDs[i]); err == nil {
			report(Event{ID: id, Status: "Already exists"})
			continue
		} else if !errors.Is(err, cas.ErrNotFound) {
			return err
		}
		report(Event{ID: id, Status: "Pulling fs layer"})
		jobs = append(jobs, job{l, diffIDs[i]})
	}
	n := opts.Jobs
	if n <= 0 {
		n = 3
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if err := pullLayer(ctx, store, s, j.desc, j.diffID, lease, report); err != nil {
				once.Do(func() { firstErr = err; cancel(err) })
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// pullLayer streams one blob into the store: its compressed digest and
// diff_id are checked by IngestLayer as the bytes go by.
func pullLayer(ctx context.Context, store *cas.Store, s *session, desc ocispec.Descriptor, diffID digest.Digest, lease *cas.Lease, report Reporter) error {
	id := shortID(desc.Digest)
	resp, err := s.do(ctx, http.MethodGet, s.url("/blobs/"+desc.Digest.String()), nil, nil, http.StatusOK)
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer resp.Body.Close()
	body := io.Reader(resp.Body)
	if desc.Size > 0 {
		// A longer stream is a mismatch anyway; don't read it forever.
		body = io.LimitReader(body, desc.Size+1)
	}
	// The raw bytes are hashed here too (cheap next to decompression), so
	// that a stream the decompressor rejects can still be told apart: a
	// blob that is not what the manifest names is a digest mismatch, not a
	// bad layer.
	raw := sha256.New()
	body = io.TeeReader(body, raw)
	progress := throttle(report, id, "Downloading", desc.Size)
	_, err = store.IngestLayer(ctx, body, cas.IngestOptions{Digest: desc.Digest, DiffID: diffID, Lease: lease, Progress: progress})
	if errors.Is(err, cas.ErrInvalidLayer) && ctx.Err() == nil {
		if _, derr := io.Copy(io.Discard, body); derr == nil {
			if got := digest.NewDigest(digest.SHA256, raw); got != desc.Digest {
				return fmt.Errorf("layer %s: verification failed: the registry sent %s: %w", desc.Digest, got, cas.ErrDigestMismatch)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	report(Event{ID: id, Status: "Verifying Checksum"})
	report(Event{ID: id, Status: "Download complete"})
	report(Event{ID: id, Status: "Extracting", Current: desc.Size, Total: desc.Size})
	report(Event{ID: id, Status: "Pull complete"})
	return nil
}
