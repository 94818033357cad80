package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/moby/moby/api/types/network"
)

// NetworkCreateOptions is what `network create` sets of a new network.
type NetworkCreateOptions struct {
	Driver     string
	EnableIPv4 *bool
	EnableIPv6 *bool
	IPAM       *network.IPAM
	Internal   bool
	Attachable bool
	Options    map[string]string
	Labels     map[string]string
}

// NetworkCreateResult is the new network's ID and the daemon's warning.
type NetworkCreateResult struct {
	ID      string
	Warning []string
}

// NetworkCreate creates a network (POST /networks/create).
func (c *Client) NetworkCreate(ctx context.Context, name string, opts NetworkCreateOptions) (NetworkCreateResult, error) {
	body := network.CreateRequest{
		Name: name, Driver: opts.Driver, EnableIPv4: opts.EnableIPv4, EnableIPv6: opts.EnableIPv6, IPAM: opts.IPAM,
		Internal: opts.Internal, Attachable: opts.Attachable, Options: opts.Options, Labels: opts.Labels,
	}
	var out network.CreateResponse
	err := c.call(ctx, request{method: http.MethodPost, path: "/networks/create", json: body}, &out)
	res := NetworkCreateResult{ID: out.ID}
	if out.Warning != "" {
		res.Warning = []string{out.Warning}
	}
	return res, err
}

// NetworkInspectOptions is empty.
type NetworkInspectOptions struct{}

// NetworkInspectResult is a network's record, decoded and as sent.
type NetworkInspectResult struct {
	Network network.Inspect
	Raw     json.RawMessage
}

// NetworkInspect returns a network's record (GET /networks/{id}).
func (c *Client) NetworkInspect(ctx context.Context, id string, _ NetworkInspectOptions) (NetworkInspectResult, error) {
	id, err := checkID("network", id)
	if err != nil {
		return NetworkInspectResult{}, err
	}
	var res NetworkInspectResult
	if err := c.call(ctx, request{method: http.MethodGet, path: "/networks/" + id}, &res.Raw); err != nil {
		return res, err
	}
	err = json.Unmarshal(res.Raw, &res.Network)
	return res, err
}

// NetworkListOptions are the list's filters.
type NetworkListOptions struct {
	Filters Filters
}

// NetworkListResult holds the listed networks.
type NetworkListResult struct {
	Items []network.Summary
}

// NetworkList lists networks (GET /networks).
func (c *Client) NetworkList(ctx context.Context, opts NetworkListOptions) (NetworkListResult, error) {
	q := url.Values{}
	opts.Filters.setQuery(q)
	var res NetworkListResult
	err := c.call(ctx, request{method: http.MethodGet, path: "/networks", query: q}, &res.Items)
	return res, err
}

// NetworkRemoveOptions is empty.
type NetworkRemoveOptions struct{}

// NetworkRemoveResult is empty.
type NetworkRemoveResult struct{}

// NetworkRemove removes a network (DELETE /networks/{id}).
func (c *Client) NetworkRemove(ctx context.Context, id string, _ NetworkRemoveOptions) (NetworkRemoveResult, error) {
	id, err := checkID("network", id)
	if err != nil {
		return NetworkRemoveResult{}, err
	}
	return NetworkRemoveResult{}, c.call(ctx, request{method: http.MethodDelete, path: "/networks/" + id}, nil)
}

// NetworkConnectOptions are the container and its endpoint's settings.
type NetworkConnectOptions struct {
	Container      string
	EndpointConfig *network.EndpointSettings
}

// NetworkConnectResult is empty.
type NetworkConnectResult struct{}

// NetworkConnect connects a container to a network
// (POST /networks/{id}/connect).
func (c *Client) NetworkConnect(ctx context.Context, id string, opts NetworkConnectOptions) (NetworkConnectResult, error) {
	id, err := checkID("network", id)
	if err != nil {
		return NetworkConnectResult{}, err
	}
	if _, err := checkID("container", opts.Container); err != nil {
		return NetworkConnectResult{}, err
	}
	body := network.ConnectRequest{Container: opts.Container, EndpointConfig: opts.EndpointConfig}
	return NetworkConnectResult{}, c.call(ctx, request{method: http.MethodPost, path: "/networks/" + id + "/connect", json: body}, nil)
}

// NetworkDisconnectOptions are the container and whether to force.
type NetworkDisconnectOptions struct {
	Container string
	Force     bool
}

// NetworkDisconnectResult is empty.
type NetworkDisconnectResult struct{}

// NetworkDisconnect disconnects a container from a network
// (POST /networks/{id}/disconnect).
func (c *Client) NetworkDisconnect(ctx context.Context, id string, opts NetworkDisconnectOptions) (NetworkDisconnectResult, error) {
	id, err := checkID("network", id)
	if err != nil {
		return NetworkDisconnectResult{}, err
	}
	if _, err := checkID("container", opts.Container); err != nil {
		return NetworkDisconnectResult{}, err
	}
	body := network.DisconnectRequest{Container: opts.Container, Force: opts.Force}
	return NetworkDisconnectResult{}, c.call(ctx, request{method: http.MethodPost, path: "/networks/" + id + "/disconnect", json: body}, nil)
}

// NetworkPruneOptions are the prune's filters.
type NetworkPruneOptions struct {
	Filters Filters
}

// NetworkPruneResult is the daemon's report.
type NetworkPruneResult struct {
	Report network.PruneReport
}

// NetworkPrune removes unused networks (POST /networks/prune).
func (c *Client) NetworkPrune(ctx context.Context, opts NetworkPruneOptions) (NetworkPruneResult, error) {
	q := url.Values{}
	opts.Filters.setQuery(q)
	var res NetworkPruneResult
	err := c.call(ctx, request{method: http.MethodPost, path: "/networks/prune", query: q}, &res.Report)
	return res, err
}
