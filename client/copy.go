package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/fusebox/fusebox/api"
)

// ContainerStatPathOptions is the path to stat.
type ContainerStatPathOptions struct {
	Path string
}

// ContainerStatPathResult is the path's stat.
type ContainerStatPathResult struct {
	Stat container.PathStat
}

// ContainerStatPath stats a path in a container
// (HEAD /containers/{id}/archive).
func (c *Client) ContainerStatPath(ctx context.Context, id string, opts ContainerStatPathOptions) (ContainerStatPathResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return ContainerStatPathResult{}, err
	}
	q := url.Values{"path": {filepath.ToSlash(opts.Path)}}
	resp, err := c.send(ctx, request{method: http.MethodHead, path: "/containers/" + id + "/archive", query: q})
	if err != nil {
		return ContainerStatPathResult{}, err
	}
	closeBody(resp)
	st, err := pathStat(resp.Header)
	return ContainerStatPathResult{Stat: st}, err
}

// pathStat decodes the stat header: base64 of JSON.
func pathStat(h http.Header) (container.PathStat, error) {
	var st container.PathStat
	dec := base64.NewDecoder(base64.StdEncoding, strings.NewReader(h.Get(api.PathStatHeader)))
	if err := json.NewDecoder(dec).Decode(&st); err != nil {
		return st, fmt.Errorf("unable to decode container path stat header: %s", err)
	}
	return st, nil
}

// CopyFromContainerOptions is the path to copy out.
type CopyFromContainerOptions struct {
	SourcePath string
}

// CopyFromContainerResult is the path as a tar, and its stat.
type CopyFromContainerResult struct {
	Content io.ReadCloser
	Stat    container.PathStat
}

// CopyFromContainer reads a path of a container as a tar
// (GET /containers/{id}/archive).
func (c *Client) CopyFromContainer(ctx context.Context, id string, opts CopyFromContainerOptions) (CopyFromContainerResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return CopyFromContainerResult{}, err
	}
	q := url.Values{"path": {filepath.ToSlash(opts.SourcePath)}}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/archive", query: q})
	if err != nil {
		return CopyFromContainerResult{}, err
	}
	st, err := pathStat(resp.Header)
	if err != nil {
		closeBody(resp)
		return CopyFromContainerResult{Stat: st}, fmt.Errorf("unable to get resource stat from response: %s", err)
	}
	return CopyFromContainerResult{Content: resp.Body, Stat: st}, nil
}

// CopyToContainerOptions are where a tar goes in a container and how.
type CopyToContainerOptions struct {
	DestinationPath           string
	Content                   io.Reader
	AllowOverwriteDirWithFile bool
	CopyUIDGID                bool
}

// CopyToContainerResult is empty.
type CopyToContainerResult struct{}

// CopyToContainer extracts a tar into a container
// (PUT /containers/{id}/archive).
func (c *Client) CopyToContainer(ctx context.Context, id string, opts CopyToContainerOptions) (CopyToContainerResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return CopyToContainerResult{}, err
	}
	q := url.Values{"path": {filepath.ToSlash(opts.DestinationPath)}}
	if !opts.AllowOverwriteDirWithFile {
		q.Set("noOverwriteDirNonDir", "true")
	}
	if opts.CopyUIDGID {
		q.Set("copyUIDGID", "true")
	}
	body := opts.Content
	if body == nil {
		body = http.NoBody
	}
	return CopyToContainerResult{}, c.call(ctx, request{method: http.MethodPut, path: "/containers/" + id + "/archive", query: q, body: body}, nil)
}
