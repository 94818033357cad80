package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apinet "github.com/moby/moby/api/types/network"

	"github.com/fusebox/fusebox/network"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodGet, "/networks", d.needNetwork(d.networkList))
		r.Handle(http.MethodPost, "/networks/create", d.needNetwork(d.networkCreate))
		r.Handle(http.MethodPost, "/networks/prune", d.needNetwork(d.networkPrune))
		r.Handle(http.MethodGet, "/networks/{id}", d.needNetwork(d.networkInspect))
		r.Handle(http.MethodDelete, "/networks/{id}", d.needNetwork(d.networkDelete))
		r.Handle(http.MethodPost, "/networks/{id}/connect", d.needNetwork(d.networkConnect))
		r.Handle(http.MethodPost, "/networks/{id}/disconnect", d.needNetwork(d.networkDisconnect))
	})
}

// needNetwork answers with the reason networking is unavailable (no CNI
// plugins) instead of running h.
func (d *Daemon) needNetwork(h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if d.net == nil {
			return fmt.Errorf("networking is not available: %w", d.netErr)
		}
		return h(w, r)
	}
}

// apiNetwork is a network record in the Engine API's shape.
func (d *Daemon) apiNetwork(n network.Network, withContainers bool) apinet.Inspect {
	out := apinet.Inspect{Network: apinet.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
		EnableIPv4: n.Driver == "bridge", Internal: n.Internal,
		IPAM:    apinet.IPAM{Driver: "default", Options: map[string]string{}, Config: []apinet.IPAMConfig{}},
		Options: n.Options, Labels: n.Labels,
	}}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Subnet.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, apinet.IPAMConfig{Subnet: n.Subnet, Gateway: n.Gateway})
	}
	if withContainers {
		out.Containers = map[string]apinet.EndpointResource{}
		for _, e := range d.net.Endpoints(n.Name) {
			r := apinet.EndpointResource{Name: e.Name, EndpointID: e.EndpointID, IPv4Address: e.Address}
			if hw, err := parseMAC(e.MAC); err == nil {
				r.MacAddress = hw
			}
			out.Containers[e.ContainerID] = r
		}
	}
	return out
}

func (d *Daemon) findNetwork(ctx context.Context, ref string) (network.Network, error) {
	n, err := d.net.Network(ctx, ref)
	if errors.Is(err, network.ErrNetworkNotFound) {
		return n, NotFoundf("network %s not found", ref)
	}
	return n, err
}

func (d *Daemon) networkList(w http.ResponseWriter, r *http.Request) error {
	filters, err := parseFilterArgs(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	for k := range filters {
		switch k {
		case "name", "id", "driver", "label", "type", "scope", "dangling":
		default:
			return BadParameterf("invalid filter '%s'", k)
		}
	}
	nets, err := d.net.Networks(r.Context())
	if err != nil {
		return err
	}
	out := []apinet.Inspect{}
	for _, n := range nets {
		if !matchNetwork(n, filters, len(d.net.Endpoints(n.Name)) > 0) {
			continue
		}
		out = append(out, d.apiNetwork(n, false))
	}
	return WriteJSON(w, http.StatusOK, out)
}

// matchNetwork applies `network ls --filter`: name and id match
// substrings and prefixes, as Docker's do.
func matchNetwork(n network.Network, f map[string][]string, used bool) bool {
	any := func(key string, ok func(v string) bool) bool {
		vs := f[key]
		if len(vs) == 0 {
			return true
		}
		for _, v := range vs {
			if ok(v) {
				return true
			}
		}
		return false
	}
	custom := !n.Predefined() && n.Name != network.HostNetwork && n.Name != network.NoneNetwork
	return any("name", func(v string) bool { return strings.Contains(n.Name, v) }) &&
		any("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
		any("driver", func(v string) bool { return n.Driver == v }) &&
		any("scope", func(v string) bool { return v == "local" }) &&
		any("type", func(v string) bool { return (v == "custom") == custom }) &&
		any("dangling", func(v string) bool { return (v == "true" || v == "1") == (custom && !used) }) &&
		any("label", func(v string) bool {
			k, val, hasVal := strings.Cut(v, "=")
			got, ok := n.Labels[k]
			return ok && (!hasVal || got == val)
		})
}

func (d *Daemon) networkInspect(w http.ResponseWriter, r *http.Request) error {
	n, err := d.findNetwork(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, d.apiNetwork(n, true))
}

func (d *Daemon) networkCreate(w http.ResponseWriter, r *http.Request) error {
	var req apinet.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return BadParameterf("invalid JSON in network create request: %v", err)
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return NotFoundf("plugin %q not found", req.Driver)
	}
	opts := network.CreateOptions{Name: req.Name, Driver: req.Driver, Internal: req.Internal, Labels: req.Labels, Options: req.Options}
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		if len(req.IPAM.Config) > 1 {
			return BadParameterf("fusebox networks have one subnet")
		}
		opts.Subnet, opts.Gateway = req.IPAM.Config[0].Subnet, req.IPAM.Config[0].Gateway
	}
	n, err := d.net.CreateNetwork(r.Context(), opts)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, apinet.CreateResponse{ID: n.ID})
}

func (d *Daemon) networkDelete(w http.ResponseWriter, r *http.Request) error {
	n, err := d.findNetwork(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if n.Name == network.HostNetwork || n.Name == network.NoneNetwork || n.Predefined() {
		return classed(network.ErrPredefined, "%s is a pre-defined network and cannot be removed", n.Name)
	}
	if err := d.net.RemoveNetwork(r.Context(), n.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (d *Daemon) networkPrune(w http.ResponseWriter, r *http.Request) error {
	filters, err := parseFilterArgs(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	nets, err := d.net.Networks(r.Context())
	if err != nil {
		return err
	}
	rep := apinet.PruneReport{NetworksDeleted: []string{}}
	for _, n := range nets {
		if n.Predefined() || n.Name == network.HostNetwork || n.Name == network.NoneNetwork {
			continue
		}
		if len(d.net.Endpoints(n.Name)) > 0 || d.networkReferenced(n) {
			continue
		}
		if !matchNetwork(n, map[string][]string{"label": filters["label"]}, false) {
			continue
		}
		if err := d.net.RemoveNetwork(r.Context(), n.ID); err != nil {
			d.log.Warn("prune network", "network", n.Name, "err", err)
			continue
		}
		rep.NetworksDeleted = append(rep.NetworksDeleted, n.Name)
	}
	return WriteJSON(w, http.StatusOK, rep)
}

// networkReferenced reports whether a container, running or not, is
// configured to use the network; prune keeps such networks, as Docker does.
func (d *Daemon) networkReferenced(n network.Network) bool {
	for _, c := range d.containers.all() {
		rec := c.snapshot()
		if m := string(rec.HostConfig.NetworkMode); m == n.Name || m == n.ID {
			return true
		}
		if _, ok := rec.Endpoints[n.Name]; ok {
			return true
		}
	}
	return false
}

func (d *Daemon) networkConnect(w http.ResponseWriter, r *http.Request) error {
	var req apinet.ConnectRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return BadParameterf("invalid JSON in network connect request: %v", err)
	}
	ctx := r.Context()
	n, err := d.findNetwork(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if n.Driver != "bridge" {
		return classed(network.ErrConflict, "container cannot be connected to network %s", n.Name)
	}
	c, err := d.containers.get(req.Container)
	if err != nil {
		return err
	}
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	rec := c.snapshot()
	mode, _ := network.ParseMode(string(rec.HostConfig.NetworkMode))
	if mode.Kind != network.KindBridge {
		return classed(network.ErrConflict, "container sharing network namespace with another container or host cannot be connected to any other network")
	}
	if _, ok := rec.Endpoints[n.Name]; ok || mode.Network == n.Name {
		return classed(network.ErrConnected, "endpoint with name %s already exists in network %s", rec.Name, n.Name)
	}
	if c.running() {
		if _, err := d.net.Connect(ctx, rec.ID, n.Name, endpointOptions(req.EndpointConfig)); err != nil {
			return err
		}
		d.rewriteHosts(ctx, rec.ID)
		d.refreshNeighbours(ctx, rec.ID)
	}
	ep := req.EndpointConfig
	if ep == nil {
		ep = &apinet.EndpointSettings{}
	}
	c.mu.Lock()
	if c.rec.Endpoints == nil {
		c.rec.Endpoints = map[string]*apinet.EndpointSettings{}
	}
	c.rec.Endpoints[n.Name] = ep
	c.mu.Unlock()
	if err := d.containers.save(ctx, c); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (d *Daemon) networkDisconnect(w http.ResponseWriter, r *http.Request) error {
	var req apinet.DisconnectRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return BadParameterf("invalid JSON in network disconnect request: %v", err)
	}
	ctx := r.Context()
	n, err := d.findNetwork(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := d.containers.get(req.Container)
	if err != nil {
		return err
	}
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	rec := c.snapshot()
	_, configured := rec.Endpoints[n.Name]
	mode, _ := network.ParseMode(string(rec.HostConfig.NetworkMode))
	primary := mode.Kind == network.KindBridge && (mode.Network == n.Name || mode.Network == n.ID)
	if !configured && !primary {
		return classed(network.ErrNotConnected, "container %s is not connected to network %s", rec.ID[:12], n.Name)
	}
	if primary {
		return classed(network.ErrConflict, "fusebox cannot disconnect container %s from its own network %s", rec.Name, n.Name)
	}
	if c.running() {
		neighbours := d.net.Neighbours(rec.ID)
		if err := d.net.Disconnect(ctx, rec.ID, n.Name); err != nil && !errors.Is(err, network.ErrNotConnected) {
			return err
		}
		d.rewriteHosts(ctx, rec.ID)
		for _, o := range neighbours {
			d.rewriteHosts(ctx, o)
		}
	}
	c.mu.Lock()
	delete(c.rec.Endpoints, n.Name)
	c.mu.Unlock()
	if err := d.containers.save(ctx, c); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
