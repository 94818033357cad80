package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/fusebox/fusebox/api"
)

// Mount mounts an image on the daemon's host (POST /fusebox/mounts); the
// daemon serves it until Unmount or until it stops. req.Target must be
// absolute.
func (c *Client) Mount(ctx context.Context, req api.MountRequest) (api.MountInfo, error) {
	var info api.MountInfo
	err := c.call(ctx, request{method: http.MethodPost, path: "/fusebox/mounts", json: req, unversioned: true}, &info)
	return info, err
}

// Mounts lists the daemon's mounts (GET /fusebox/mounts).
func (c *Client) Mounts(ctx context.Context) ([]api.MountInfo, error) {
	var out []api.MountInfo
	err := c.call(ctx, request{method: http.MethodGet, path: "/fusebox/mounts", unversioned: true}, &out)
	return out, err
}

// Unmount unmounts a mount made with Mount (DELETE /fusebox/mounts).
func (c *Client) Unmount(ctx context.Context, target string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/fusebox/mounts", query: url.Values{"target": {target}}, unversioned: true}, nil)
}

// MountChanges lists what a writable mount changed, from its journal
// (GET /fusebox/mounts/changes).
func (c *Client) MountChanges(ctx context.Context, target string) ([]api.MountChange, error) {
	var out []api.MountChange
	err := c.call(ctx, request{method: http.MethodGet, path: "/fusebox/mounts/changes", query: url.Values{"target": {target}}, unversioned: true}, &out)
	return out, err
}
