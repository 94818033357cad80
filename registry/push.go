package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/image"
)

// PushOptions tunes Push.
type PushOptions struct {
	Config Config
	Auth   *AuthConfig
	// TempDir holds the compressed layers while they upload; empty means
	// os.TempDir(). The daemon passes a directory under its root, on the
	// store's file system and emptied at start-up.
	TempDir  string
	Progress Reporter
}

// Pushed is the result of a push.
type Pushed struct {
	// Digest and Size describe the manifest the registry now holds.
	Digest digest.Digest
	Size   int
}

// ErrNoSuchLocalImage: the reference to push names no stored image.
var ErrNoSuchLocalImage = errors.New("an image does not exist locally with the tag")

// Push uploads the image ref (normalised, tagged) names to ref's registry:
// each layer the registry lacks, then the config and a Docker v2 schema 2
// manifest under ref's tag. Mirrors are never pushed to.
func Push(ctx context.Context, store *cas.Store, ref reference.Named, opts PushOptions) (Pushed, error) {
	report := opts.Progress.sync()
	tagged, ok := ref.(reference.NamedTagged)
	if !ok {
		return Pushed{}, fmt.Errorf("%w: push needs a tag: %s", image.ErrInvalidReference, image.Familiar(ref))
	}
	id, err := store.Tag(ctx, ref.String())
	if errors.Is(err, cas.ErrNotFound) {
		return Pushed{}, fmt.Errorf("%w: %s", ErrNoSuchLocalImage, reference.FamiliarName(ref))
	} else if err != nil {
		return Pushed{}, err
	}
	cfgBytes, err := store.Blob(ctx, id)
	if err != nil {
		return Pushed{}, err
	}
	cfg, err := image.ParseConfig(cfgBytes)
	if err != nil {
		return Pushed{}, err
	}
	eps, err := opts.Config.endpoints(ref, true)
	if err != nil {
		return Pushed{}, err
	}
	ep := eps[len(eps)-1]
	report(Event{Status: "The push refers to repository [" + reference.TrimNamed(ref).String() + "]"})
	s, err := openSession(ctx, ep, opts.Auth, transport.PushScope)
	if err != nil {
		return Pushed{}, err
	}
	diffIDs := cfg.RootFS.DiffIDs
	// Docker lists the layers top first.
	for i := len(diffIDs) - 1; i >= 0; i-- {
		report(Event{ID: shortID(diffIDs[i]), Status: "Preparing"})
	}
	layers := make([]ocispec.Descriptor, len(diffIDs))
	done := map[digest.Digest]ocispec.Descriptor{}
	for i := len(diffIDs) - 1; i >= 0; i-- {
		d := diffIDs[i]
		if desc, ok := done[d]; ok {
			layers[i] = desc
			continue
		}
		desc, err := pushLayer(ctx, store, s, d, opts.TempDir, report)
		if err != nil {
			return Pushed{}, fmt.Errorf("layer %s: %w", d, err)
		}
		layers[i], done[d] = desc, desc
	}
	cfgDesc := ocispec.Descriptor{MediaType: MediaTypeDockerConfig, Digest: id, Size: int64(len(cfgBytes))}
	if ok, err := s.hasBlob(ctx, id); err != nil {
		return Pushed{}, err
	} else if !ok {
		if err := s.upload(ctx, id, int64(len(cfgBytes)), func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(cfgBytes)), nil
		}, nil); err != nil {
			return Pushed{}, fmt.Errorf("config: %w", err)
		}
	}
	m := struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        ocispec.Descriptor   `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
	}{2, MediaTypeDockerManifest, cfgDesc, layers}
	mb, err := json.MarshalIndent(m, "", "   ")
	if err != nil {
		return Pushed{}, err
	}
	resp, err := s.do(ctx, http.MethodPut, s.url("/manifests/"+tagged.Tag()), bytes.NewReader(mb),
		http.Header{"Content-Type": {MediaTypeDockerManifest}}, http.StatusCreated, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return Pushed{}, fmt.Errorf("manifest: %w", err)
	}
	resp.Body.Close()
	md := digest.FromBytes(mb)
	if err := store.AddRepoDigest(ctx, id, reference.TrimNamed(ref).String()+"@"+md.String()); err != nil {
		return Pushed{}, err
	}
	report(Event{Status: fmt.Sprintf("%s: digest: %s size: %d", tagged.Tag(), md, len(mb))})
	return Pushed{Digest: md, Size: len(mb)}, nil
}

// pushLayer makes sure the registry holds a gzip blob of the layer and
// returns its descriptor.
func pushLayer(ctx context.Context, store *cas.Store, s *session, diffID digest.Digest, tmpDir string, report Reporter) (ocispec.Descriptor, error) {
	id := shortID(diffID)
	// A blob this layer is known by (pulled or pushed before) that the
	// registry already has: nothing to compress.
	// Or that another repository of the same registry has: mount it
	// from there, as Docker does.
	for _, known := range knownBlobs(ctx, store, diffID) {
		if known.MediaType != MediaTypeDockerLayerGzip && known.MediaType != ocispec.MediaTypeImageLayerGzip {
			continue
		}
		desc := known.descriptor()
		desc.MediaType = MediaTypeDockerLayerGzip
		if ok, err := s.hasBlob(ctx, known.Digest); err != nil {
			return ocispec.Descriptor{}, err
		} else if ok {
			report(Event{ID: id, Status: "Layer already exists"})
			rememberBlob(ctx, store, diffID, desc, s.repo.Name())
			return desc, nil
		}
		for _, from := range known.Repos {
			host, path, ok := strings.Cut(from, "/")
			if !ok || host != s.repo.RegistryStr() || path == s.repo.RepositoryStr() {
				continue
			}
			if s.mount(ctx, known.Digest, path) {
				report(Event{ID: id, Status: "Mounted from " + path})
				rememberBlob(ctx, store, diffID, desc, s.repo.Name())
				return desc, nil
			}
		}
	}
	f, desc, err := compressLayer(ctx, store, diffID, tmpDir)
	if err != nil {
		return desc, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if ok, err := s.hasBlob(ctx, desc.Digest); err != nil {
		return desc, err
	} else if ok {
		report(Event{ID: id, Status: "Layer already exists"})
		rememberBlob(ctx, store, diffID, desc, s.repo.Name())
		return desc, nil
	}
	progress := throttle(report, id, "Pushing", desc.Size)
	open := func() (io.ReadCloser, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return io.NopCloser(f), nil
	}
	if err := s.upload(ctx, desc.Digest, desc.Size, open, progress); err != nil {
		return desc, err
	}
	report(Event{ID: id, Status: "Pushed"})
	rememberBlob(ctx, store, diffID, desc, s.repo.Name())
	return desc, nil
}

// compressLayer gzips the layer's tar, rebuilt from the store, into a temp
// file and hashes it on the way.
func compressLayer(ctx context.Context, store *cas.Store, diffID digest.Digest, tmpDir string) (*os.File, ocispec.Descriptor, error) {
	rc, err := store.LayerTar(ctx, diffID)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(tmpDir, "push-*.tar.gz")
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	fail := func(err error) (*os.File, ocispec.Descriptor, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, ocispec.Descriptor{}, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	gz, err := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(gz, ctxReader{ctx, rc}); err != nil {
		return fail(err)
	}
	if err := gz.Close(); err != nil {
		return fail(err)
	}
	return f, ocispec.Descriptor{MediaType: MediaTypeDockerLayerGzip, Digest: digest.NewDigest(digest.SHA256, h), Size: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// hasBlob asks the registry whether it holds a blob (HEAD).
func (s *session) hasBlob(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := s.do(ctx, http.MethodHead, s.url("/blobs/"+d.String()), nil, nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// upload sends a blob: POST to start an upload session, then one PUT of
// the whole blob with its digest (a monolithic upload, which every
// registry accepts).
func (s *session) upload(ctx context.Context, d digest.Digest, size int64, open func() (io.ReadCloser, error), progress func(int64)) error {
	resp, err := s.do(ctx, http.MethodPost, s.url("/blobs/uploads/"), nil, nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("upload of %s: registry gave no location: %w", d, err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	body, err := open()
	if err != nil {
		return err
	}
	defer body.Close()
	var r io.Reader = body
	if progress != nil {
		r = &progressReader{r: body, fn: progress}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), r)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Length", strconv.FormatInt(size, 10))
	req.GetBody = func() (io.ReadCloser, error) { return open() }
	presp, err := s.hc.Do(req)
	if err != nil {
		return classifyTransportErr(s.repo.RegistryStr(), err)
	}
	defer presp.Body.Close()
	if err := transport.CheckError(presp, http.StatusCreated); err != nil {
		return classifyTransportErr(s.repo.RegistryStr(), err)
	}
	return nil
}

var (
	_ io.Reader = (*progressReader)(nil)
	_ io.Writer = (*countWriter)(nil)
	_ io.Reader = ctxReader{}
)

type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.fn(p.n)
	return n, err
}

// mount asks the registry to link a blob of another of its repositories
// into this one (POST …/blobs/uploads/?mount=&from=): 201 is done; any
// other answer (202 opens an ordinary upload, which is abandoned) means
// the blob is to be uploaded.
func (s *session) mount(ctx context.Context, d digest.Digest, from string) bool {
	u := s.url("/blobs/uploads/") + "?mount=" + url.QueryEscape(d.String()) + "&from=" + url.QueryEscape(from)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return false
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		if loc, err := resp.Location(); err == nil {
			if req, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc.String(), nil); err == nil {
				if r, err := s.hc.Do(req); err == nil {
					r.Body.Close()
				}
			}
		}
	}
	return resp.StatusCode == http.StatusCreated
}
