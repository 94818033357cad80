package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/volume"
)

// VolumeCreateOptions describe a new volume.
type VolumeCreateOptions struct {
	Name       string
	Driver     string
	DriverOpts map[string]string
	Labels     map[string]string
}

// VolumeCreateResult is the created (or existing) volume.
type VolumeCreateResult struct {
	Volume volume.Volume
}

// VolumeCreate creates a volume (POST /volumes/create).
func (c *Client) VolumeCreate(ctx context.Context, opts VolumeCreateOptions) (VolumeCreateResult, error) {
	body := volume.CreateRequest{Name: opts.Name, Driver: opts.Driver, DriverOpts: opts.DriverOpts, Labels: opts.Labels}
	var res VolumeCreateResult
	err := c.call(ctx, request{method: http.MethodPost, path: "/volumes/create", json: body}, &res.Volume)
	return res, err
}

// VolumeInspectOptions is empty.
type VolumeInspectOptions struct{}

// VolumeInspectResult is a volume's record.
type VolumeInspectResult struct {
	Volume volume.Volume
}

// VolumeInspect returns a volume's record (GET /volumes/{name}).
func (c *Client) VolumeInspect(ctx context.Context, name string, _ VolumeInspectOptions) (VolumeInspectResult, error) {
	name, err := checkID("volume", name)
	if err != nil {
		return VolumeInspectResult{}, err
	}
	var res VolumeInspectResult
	err = c.call(ctx, request{method: http.MethodGet, path: "/volumes/" + name}, &res.Volume)
	return res, err
}

// VolumeListOptions are the list's filters.
type VolumeListOptions struct {
	Filters Filters
}

// VolumeListResult holds the listed volumes.
type VolumeListResult struct {
	Items    []volume.Volume
	Warnings []string
}

// VolumeList lists volumes (GET /volumes).
func (c *Client) VolumeList(ctx context.Context, opts VolumeListOptions) (VolumeListResult, error) {
	q := url.Values{}
	opts.Filters.setQuery(q)
	var out volume.ListResponse
	err := c.call(ctx, request{method: http.MethodGet, path: "/volumes", query: q}, &out)
	return VolumeListResult{Items: out.Volumes, Warnings: out.Warnings}, err
}

// VolumeRemoveOptions says whether to force.
type VolumeRemoveOptions struct {
	Force bool
}

// VolumeRemoveResult is empty.
type VolumeRemoveResult struct{}

// VolumeRemove removes a volume (DELETE /volumes/{name}).
func (c *Client) VolumeRemove(ctx context.Context, name string, opts VolumeRemoveOptions) (VolumeRemoveResult, error) {
	name, err := checkID("volume", name)
	if err != nil {
		return VolumeRemoveResult{}, err
	}
	q := url.Values{}
	setBool(q, "force", opts.Force)
	return VolumeRemoveResult{}, c.call(ctx, request{method: http.MethodDelete, path: "/volumes/" + name, query: q}, nil)
}

// VolumePruneOptions are the prune's filters; All prunes named volumes
// too.
type VolumePruneOptions struct {
	All     bool
	Filters Filters
}

// VolumePruneResult is the daemon's report.
type VolumePruneResult struct {
	Report volume.PruneReport
}

// VolumePrune removes unused volumes (POST /volumes/prune).
func (c *Client) VolumePrune(ctx context.Context, opts VolumePruneOptions) (VolumePruneResult, error) {
	f := opts.Filters
	if opts.All {
		if _, ok := f["all"]; ok {
			return VolumePruneResult{}, &ResponseError{Status: http.StatusBadRequest, Message: `conflicting options: cannot specify both "all" and "all" filter`, bare: true}
		}
		if f == nil {
			f = Filters{}
		}
		f.Add("all", "true")
	}
	q := url.Values{}
	f.setQuery(q)
	var res VolumePruneResult
	err := c.call(ctx, request{method: http.MethodPost, path: "/volumes/prune", query: q}, &res.Report)
	return res, err
}
