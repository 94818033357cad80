package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// InfoOptions is empty.
type InfoOptions struct{}

// SystemInfoResult is the daemon's `info`.
type SystemInfoResult struct {
	Info system.Info
}

// Info describes the daemon (GET /info).
func (c *Client) Info(ctx context.Context, _ InfoOptions) (SystemInfoResult, error) {
	var res SystemInfoResult
	err := c.call(ctx, request{method: http.MethodGet, path: "/info"}, &res.Info)
	return res, err
}

// ServerVersionOptions is empty.
type ServerVersionOptions struct{}

// ServerVersion is the daemon's version (GET /version).
func (c *Client) ServerVersion(ctx context.Context, _ ServerVersionOptions) (system.VersionResponse, error) {
	var v system.VersionResponse
	err := c.call(ctx, request{method: http.MethodGet, path: "/version"}, &v)
	return v, err
}

// RegistryLoginOptions are the credentials to check.
type RegistryLoginOptions struct {
	Username, Password, ServerAddress string
}

// RegistryLoginResult is the daemon's answer, with an identity token
// when the registry gave one.
type RegistryLoginResult struct {
	Auth registry.AuthResponse
}

// RegistryLogin checks credentials against a registry (POST /auth).
func (c *Client) RegistryLogin(ctx context.Context, opts RegistryLoginOptions) (RegistryLoginResult, error) {
	body := registry.AuthConfig{Username: opts.Username, Password: opts.Password, ServerAddress: opts.ServerAddress}
	var res RegistryLoginResult
	err := c.call(ctx, request{method: http.MethodPost, path: "/auth", json: body}, &res.Auth)
	return res, err
}

// EventsListOptions are the parameters of GET /events; Since and Until
// take what docker events takes (see ContainerLogsOptions).
type EventsListOptions struct {
	Since, Until string
	Filters      Filters
}

// EventsResult delivers the events until the stream ends; then one error
// (io.EOF at a clean end, ctx's error when cancelled) comes on Err.
type EventsResult struct {
	Messages <-chan events.Message
	Err      <-chan error
}

// Events streams the daemon's events (GET /events).
func (c *Client) Events(ctx context.Context, opts EventsListOptions) EventsResult {
	msgs := make(chan events.Message)
	errs := make(chan error, 1)
	res := EventsResult{Messages: msgs, Err: errs}
	q := url.Values{}
	now := time.Now()
	for _, p := range []struct{ key, val string }{{"since", opts.Since}, {"until", opts.Until}} {
		if p.val == "" {
			continue
		}
		ts, err := apiTimestamp(p.val, now)
		if err != nil {
			errs <- err
			close(errs)
			return res
		}
		q.Set(p.key, ts)
	}
	opts.Filters.setQuery(q)
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/events", query: q})
	if err != nil {
		errs <- err
		close(errs)
		return res
	}
	go func() {
		defer close(errs)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var m events.Message
			if err := dec.Decode(&m); err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				errs <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
	}()
	return res
}

// DiskUsageOptions is what `system df` asks for.
type DiskUsageOptions struct {
	Images, Containers, Volumes, BuildCache bool
}

// DiskUsage sums one kind of object of `system df`.
type DiskUsage struct {
	ActiveCount, TotalCount, Reclaimable, TotalSize int64
}

// DiskUsageResult is `system df`'s four rows.
type DiskUsageResult struct {
	Images, Containers, Volumes, BuildCache DiskUsage
}

// legacyDiskUsage is the answer of /system/df at API versions below 1.52,
// lists of objects the client sums.
type legacyDiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// DiskUsage is the space images, containers, volumes and the build cache
// take (GET /system/df), summed as the docker CLI sums it.
func (c *Client) DiskUsage(ctx context.Context, opts DiskUsageOptions) (DiskUsageResult, error) {
	q := url.Values{}
	for _, t := range []struct {
		on   bool
		name string
	}{{opts.Containers, "container"}, {opts.Images, "image"}, {opts.Volumes, "volume"}, {opts.BuildCache, "build-cache"}} {
		if t.on {
			q.Add("type", t.name)
		}
	}
	var du legacyDiskUsage
	if err := c.call(ctx, request{method: http.MethodGet, path: "/system/df", query: q}, &du); err != nil {
		return DiskUsageResult{}, err
	}
	return du.sum(), nil
}

// sum counts the active objects and the space the inactive ones would
// give back.
func (du *legacyDiskUsage) sum() DiskUsageResult {
	var r DiskUsageResult
	r.Images = DiskUsage{TotalSize: du.LayersSize, TotalCount: int64(len(du.Images))}
	for _, img := range du.Images {
		switch {
		case img.Containers > 0:
			r.Images.ActiveCount++
		case img.Containers == 0 && img.Size != -1 && img.SharedSize != -1:
			r.Images.Reclaimable += img.Size - img.SharedSize
		}
	}
	var used int64
	r.Containers.TotalCount = int64(len(du.Containers))
	for _, ct := range du.Containers {
		r.Containers.TotalSize += ct.SizeRw
		switch ct.State {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
			r.Containers.ActiveCount++
			used += ct.SizeRw
		}
	}
	r.Containers.Reclaimable = r.Containers.TotalSize - used
	used = 0
	r.Volumes.TotalCount = int64(len(du.Volumes))
	for _, v := range du.Volumes {
		if v.UsageData == nil {
			continue
		}
		if v.UsageData.RefCount > 0 {
			r.Volumes.ActiveCount++
			used += v.UsageData.Size
		}
		if v.UsageData.Size > 0 {
			r.Volumes.TotalSize += v.UsageData.Size
		}
	}
	r.Volumes.Reclaimable = r.Volumes.TotalSize - used
	used = 0
	r.BuildCache.TotalCount = int64(len(du.BuildCache))
	for _, b := range du.BuildCache {
		if !b.Shared {
			r.BuildCache.TotalSize += b.Size
		}
		if b.InUse {
			r.BuildCache.ActiveCount++
			if !b.Shared {
				used += b.Size
			}
		}
	}
	r.BuildCache.Reclaimable = r.BuildCache.TotalSize - used
	return r
}
