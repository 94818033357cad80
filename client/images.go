package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fusebox/fusebox/image/imageref"
)

// authHeader is the header the daemon reads a registry login from.
const authHeader = "X-Registry-Auth"

// JSONStream is a progress stream of Docker's JSON messages (pull, push):
// read it to show the progress, or Wait for its end.
type JSONStream struct {
	io.ReadCloser
}

// Wait reads the stream to its end and closes it; the first error
// message in it is the error.
func (s JSONStream) Wait(ctx context.Context) error {
	defer s.Close()
	dec := json.NewDecoder(s)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != nil {
			return m.Error
		}
	}
}

// ImagePullOptions are the parameters of a pull.
type ImagePullOptions struct {
	All          bool
	RegistryAuth string // the X-Registry-Auth value
	Platforms    []ocispec.Platform
}

// ImagePull pulls an image (POST /images/create?fromImage=…); ref is
// normalised as the docker CLI does, "latest" standing for no tag unless
// opts.All.
func (c *Client) ImagePull(ctx context.Context, ref string, opts ImagePullOptions) (JSONStream, error) {
	r, err := imageref.ParseNormalized(ref)
	if err != nil {
		return JSONStream{}, err
	}
	q := url.Values{"fromImage": {r.Name()}}
	if !opts.All {
		if r.Digest != "" {
			q.Set("tag", r.Digest.String())
		} else {
			q.Set("tag", r.WithDefaultTag().Tag)
		}
	}
	switch len(opts.Platforms) {
	case 0:
	case 1:
		if p := opts.Platforms[0]; p.OS != "" {
			q.Set("platform", path.Join(p.OS, p.Architecture, p.Variant))
		}
	default:
		return JSONStream{}, errors.New("specifying multiple platforms is not yet supported")
	}
	body, err := c.stream(ctx, request{method: http.MethodPost, path: "/images/create", query: q, header: registryAuth(opts.RegistryAuth)})
	return JSONStream{body}, err
}

// registryAuth is the header carrying auth, none when auth is empty.
func registryAuth(auth string) http.Header {
	if auth == "" {
		return nil
	}
	return http.Header{authHeader: {auth}}
}

// ImagePushOptions are the parameters of a push.
type ImagePushOptions struct {
	All          bool
	RegistryAuth string
}

// ImagePush pushes an image (POST /images/{name}/push).
func (c *Client) ImagePush(ctx context.Context, ref string, opts ImagePushOptions) (JSONStream, error) {
	r, err := imageref.ParseNormalized(ref)
	if err != nil {
		return JSONStream{}, err
	}
	if r.Digest != "" {
		return JSONStream{}, errors.New("cannot push a digest reference")
	}
	q := url.Values{}
	if !opts.All {
		q.Set("tag", r.WithDefaultTag().Tag)
	}
	body, err := c.stream(ctx, request{method: http.MethodPost, path: "/images/" + r.Name() + "/push", query: q, header: registryAuth(opts.RegistryAuth)})
	return JSONStream{body}, err
}

// ImageInspectRaw returns an image's record as the daemon sent it
// (GET /images/{name}/json).
func (c *Client) ImageInspectRaw(ctx context.Context, name string) (json.RawMessage, error) {
	if name == "" {
		return nil, &ResponseError{Status: http.StatusNotFound, Message: "Error: No such image: ", bare: true}
	}
	var raw json.RawMessage
	err := c.call(ctx, request{method: http.MethodGet, path: "/images/" + name + "/json"}, &raw)
	return raw, err
}

// ImageListOptions are the parameters of GET /images/json.
type ImageListOptions struct {
	All     bool
	Filters Filters
}

// ImageListResult holds the listed images.
type ImageListResult struct {
	Items []image.Summary
}

// ImageList lists images (GET /images/json).
func (c *Client) ImageList(ctx context.Context, opts ImageListOptions) (ImageListResult, error) {
	q := url.Values{}
	opts.Filters.setQuery(q)
	setBool(q, "all", opts.All)
	var res ImageListResult
	err := c.call(ctx, request{method: http.MethodGet, path: "/images/json", query: q}, &res.Items)
	return res, err
}

// ImageHistoryResult is an image's history, newest first.
type ImageHistoryResult struct {
	Items []image.HistoryResponseItem
}

// ImageHistory lists an image's layers' history (GET /images/{name}/history).
func (c *Client) ImageHistory(ctx context.Context, name string) (ImageHistoryResult, error) {
	var res ImageHistoryResult
	err := c.call(ctx, request{method: http.MethodGet, path: "/images/" + name + "/history"}, &res.Items)
	return res, err
}

// ImageImportSource is the tar to import; SourceName "-" sends Source.
type ImageImportSource struct {
	Source     io.Reader
	SourceName string
}

// ImageImportOptions are the message and Dockerfile changes of an import.
type ImageImportOptions struct {
	Message string
	Changes []string
}

// ImageImport makes an image of a tar (POST /images/create?fromSrc=…);
// ref, when not empty, names it.
func (c *Client) ImageImport(ctx context.Context, src ImageImportSource, ref string, opts ImageImportOptions) (io.ReadCloser, error) {
	if ref != "" {
		if _, err := imageref.ParseNormalized(ref); err != nil {
			return nil, err
		}
	}
	q := url.Values{}
	if src.SourceName != "" {
		q.Set("fromSrc", src.SourceName)
	}
	if ref != "" {
		q.Set("repo", ref)
	}
	if opts.Message != "" {
		q.Set("message", opts.Message)
	}
	for _, ch := range opts.Changes {
		q.Add("changes", ch)
	}
	return c.stream(ctx, request{method: http.MethodPost, path: "/images/create", query: q, body: src.Source})
}

// ImageLoad loads images from a docker save or OCI archive
// (POST /images/load); the answer is a JSON message stream.
func (c *Client) ImageLoad(ctx context.Context, archive io.Reader, quiet bool) (io.ReadCloser, error) {
	q := url.Values{"quiet": {"0"}}
	if quiet {
		q.Set("quiet", "1")
	}
	return c.stream(ctx, request{method: http.MethodPost, path: "/images/load", query: q, body: archive,
		header: http.Header{"Content-Type": {"application/x-tar"}}})
}

// ImageSave streams images as a docker save archive (GET /images/get).
func (c *Client) ImageSave(ctx context.Context, names []string) (io.ReadCloser, error) {
	return c.stream(ctx, request{method: http.MethodGet, path: "/images/get", query: url.Values{"names": names}})
}

// ImageSearchOptions are the parameters of GET /images/search.
type ImageSearchOptions struct {
	RegistryAuth string
	Filters      Filters
	Limit        int
}

// ImageSearchResult holds the search's results.
type ImageSearchResult struct {
	Items []registry.SearchResult
}

// ImageSearch searches a registry (GET /images/search).
func (c *Client) ImageSearch(ctx context.Context, term string, opts ImageSearchOptions) (ImageSearchResult, error) {
	q := url.Values{"term": {term}}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	opts.Filters.setQuery(q)
	var res ImageSearchResult
	err := c.call(ctx, request{method: http.MethodGet, path: "/images/search", query: q,
		header: http.Header{authHeader: {opts.RegistryAuth}}}, &res.Items)
	return res, err
}

// ImageTagOptions are the image to tag and its new name.
type ImageTagOptions struct {
	Source, Target string
}

// ImageTagResult is empty.
type ImageTagResult struct{}

// ImageTag names an image (POST /images/{name}/tag); both names are
// checked first, with the docker CLI's errors.
func (c *Client) ImageTag(ctx context.Context, opts ImageTagOptions) (ImageTagResult, error) {
	if _, err := imageref.ParseAny(opts.Source); err != nil {
		return ImageTagResult{}, fmt.Errorf("error parsing reference: %q is not a valid repository/tag: %w", opts.Source, err)
	}
	r, err := imageref.ParseNormalized(opts.Target)
	if err != nil {
		return ImageTagResult{}, fmt.Errorf("error parsing reference: %q is not a valid repository/tag: %w", opts.Target, err)
	}
	if r.Digest != "" {
		return ImageTagResult{}, errors.New("refusing to create a tag with a digest reference")
	}
	q := url.Values{"repo": {r.Name()}, "tag": {r.WithDefaultTag().Tag}}
	return ImageTagResult{}, c.call(ctx, request{method: http.MethodPost, path: "/images/" + opts.Source + "/tag", query: q}, nil)
}

// ImageRemoveOptions are the parameters of DELETE /images/{name}.
type ImageRemoveOptions struct {
	Force         bool
	PruneChildren bool
}

// ImageRemoveResult lists what was untagged and deleted.
type ImageRemoveResult struct {
	Items []image.DeleteResponse
}

// ImageRemove untags or deletes an image (DELETE /images/{name}).
func (c *Client) ImageRemove(ctx context.Context, name string, opts ImageRemoveOptions) (ImageRemoveResult, error) {
	q := url.Values{}
	setBool(q, "force", opts.Force)
	setBool(q, "noprune", !opts.PruneChildren)
	var res ImageRemoveResult
	err := c.call(ctx, request{method: http.MethodDelete, path: "/images/" + name, query: q}, &res.Items)
	return res, err
}

// ImagePruneOptions are the prune's filters.
type ImagePruneOptions struct {
	Filters Filters
}

// ImagePruneResult is the daemon's report.
type ImagePruneResult struct {
	Report image.PruneReport
}

// ImagePrune removes unused images (POST /images/prune).
func (c *Client) ImagePrune(ctx context.Context, opts ImagePruneOptions) (ImagePruneResult, error) {
	q := url.Values{}
	opts.Filters.setQuery(q)
	var res ImagePruneResult
	err := c.call(ctx, request{method: http.MethodPost, path: "/images/prune", query: q}, &res.Report)
	return res, err
}
