package daemon

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	apinet "github.com/moby/moby/api/types/network"
	moby "github.com/moby/moby/client"

	"github.com/fusebox/fusebox/api"
)

func TestNetworkConfigPerRoot(t *testing.T) {
	def := networkConfig(api.DefaultRoot, nil)
	if def.DefaultBridge != "" || def.NetnsDir != "" || def.DefaultSubnet.IsValid() {
		t.Errorf("the system daemon should get the package defaults: %+v", def)
	}
	a, b := networkConfig("/tmp/a", nil), networkConfig("/tmp/b", nil)
	if a.DefaultBridge == b.DefaultBridge || a.NetnsDir == b.NetnsDir || len(a.DefaultBridge) > 15 {
		t.Errorf("two roots share a bridge or netns dir: %+v %+v", a, b)
	}
	if a2 := networkConfig("/tmp/a", nil); a2.DefaultBridge != a.DefaultBridge || a2.DefaultSubnet != a.DefaultSubnet || a2.NetnsDir != a.NetnsDir {
		t.Error("the same root must give the same config")
	}
	if !netip.MustParsePrefix("10.192.0.0/10").Overlaps(a.DefaultSubnet) || a.DefaultSubnet.Bits() != 24 {
		t.Errorf("subnet %s", a.DefaultSubnet)
	}
}

func TestNetworkRoutes(t *testing.T) {
	_, host := startDaemon(t)
	c := newClient(t, host)
	ctx := context.Background()

	ls, err := c.NetworkList(ctx, moby.NetworkListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range ls.Items {
		names = append(names, n.Name+"/"+n.Driver)
	}
	if strings.Join(names, " ") != "bridge/bridge host/host none/null" {
		t.Errorf("predefined networks: %v", names)
	}
	res, err := c.NetworkCreate(ctx, "web", moby.NetworkCreateOptions{Labels: map[string]string{"tier": "front"},
		IPAM: &apinet.IPAM{Config: []apinet.IPAMConfig{{Subnet: netip.MustParsePrefix("10.213.251.0/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ID) != 64 {
		t.Errorf("create id %q", res.ID)
	}
	tests := []struct {
		name string
		do   func() error
		code int
		msg  string
	}{
		{"duplicate", func() error { _, err := c.NetworkCreate(ctx, "web", moby.NetworkCreateOptions{}); return err }, http.StatusConflict, "already exists"},
		{"other driver", func() error {
			_, err := c.NetworkCreate(ctx, "ov", moby.NetworkCreateOptions{Driver: "overlay"})
			return err
		}, http.StatusNotFound, `plugin "overlay" not found`},
		{"inspect missing", func() error { _, err := c.NetworkInspect(ctx, "nosuch", moby.NetworkInspectOptions{}); return err }, http.StatusNotFound, "network nosuch not found"},
		{"rm predefined", func() error { _, err := c.NetworkRemove(ctx, "bridge", moby.NetworkRemoveOptions{}); return err }, http.StatusForbidden, "bridge is a pre-defined network and cannot be removed"},
		{"bad filter", func() error {
			_, err := c.NetworkList(ctx, moby.NetworkListOptions{Filters: moby.Filters{}.Add("color", "red")})
			return err
		}, http.StatusBadRequest, "invalid filter 'color'"},
	}
	for _, tt := range tests {
		err := tt.do()
		if err == nil || !strings.Contains(err.Error(), tt.msg) || !statusLike(err, tt.code) {
			t.Errorf("%s: %v, want %d with %q", tt.name, err, tt.code, tt.msg)
		}
	}
	f, err := c.NetworkList(ctx, moby.NetworkListOptions{Filters: moby.Filters{}.Add("label", "tier=front").Add("type", "custom")})
	if err != nil || len(f.Items) != 1 || f.Items[0].ID != res.ID {
		t.Errorf("filtered list: %+v, %v", f.Items, err)
	}
	ins, err := c.NetworkInspect(ctx, res.ID[:10], moby.NetworkInspectOptions{})
	if err != nil || ins.Network.Name != "web" || len(ins.Network.IPAM.Config) != 1 || ins.Network.IPAM.Config[0].Subnet.String() != "10.213.251.0/24" {
		t.Errorf("inspect by id prefix: %+v, %v", ins.Network, err)
	}

	// A container created on the network keeps it from prune, and the
	// create checks the network, --ip and the ports before anything exists.
	load(t, c, archiveBytes(t, testImage(t, "/bin/app", []string{"app:v1"}, tarOf(t, map[string]string{"bin/app": "x"}))))
	for _, bad := range []struct {
		hc  *container.HostConfig
		net *apinet.NetworkingConfig
		msg string
	}{
		{&container.HostConfig{NetworkMode: "nosuch"}, nil, "network nosuch not found"},
		{&container.HostConfig{NetworkMode: "container:nosuch"}, nil, "No such container: nosuch"},
		{&container.HostConfig{NetworkMode: "web"}, &apinet.NetworkingConfig{EndpointsConfig: map[string]*apinet.EndpointSettings{
			"web": {IPAMConfig: &apinet.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.9.9.9")}}}}, "no configured subnet or ip-range contain the IP address 10.9.9.9"},
		{&container.HostConfig{PortBindings: apinet.PortMap{apinet.MustParsePort("80/tcp"): {{HostPort: "99999"}}}}, nil, "invalid hostPort: 99999"},
		{&container.HostConfig{ExtraHosts: []string{"nocolon"}}, nil, "bad format for add-host"},
	} {
		_, err := c.ContainerCreate(ctx, moby.ContainerCreateOptions{Config: &container.Config{Image: "app:v1"}, HostConfig: bad.hc, NetworkingConfig: bad.net})
		if err == nil || !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("create %+v: %v, want a 400 with %q", bad.hc, err, bad.msg)
		}
	}
	if l, _ := c.ContainerList(ctx, moby.ContainerListOptions{All: true}); len(l.Items) != 0 {
		t.Errorf("failed creates left %d containers", len(l.Items))
	}
	if _, err := c.ContainerCreate(ctx, moby.ContainerCreateOptions{Name: "member", Config: &container.Config{Image: "app:v1"}, HostConfig: &container.HostConfig{NetworkMode: "web"}}); err != nil {
		t.Fatal(err)
	}
	pr, err := c.NetworkPrune(ctx, moby.NetworkPruneOptions{})
	if err != nil || len(pr.Report.NetworksDeleted) != 0 {
		t.Errorf("prune removed a network in use: %+v, %v", pr.Report, err)
	}
	if _, err := c.ContainerRemove(ctx, "member", moby.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	pr, err = c.NetworkPrune(ctx, moby.NetworkPruneOptions{})
	if err != nil || strings.Join(pr.Report.NetworksDeleted, ",") != "web" {
		t.Errorf("prune: %+v, %v", pr.Report, err)
	}
	if _, err := c.NetworkInspect(ctx, "web", moby.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("after prune: %v", err)
	}
}

// statusLike matches the client's error classes to an HTTP status.
func statusLike(err error, code int) bool {
	switch code {
	case http.StatusNotFound:
		return cerrdefs.IsNotFound(err)
	case http.StatusConflict:
		return cerrdefs.IsConflict(err)
	case http.StatusForbidden:
		return cerrdefs.IsPermissionDenied(err)
	case http.StatusBadRequest:
		return cerrdefs.IsInvalidArgument(err)
	}
	return false
}
