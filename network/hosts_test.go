package network

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestResolvConf(t *testing.T) {
	host := "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\nsortlist 10.0.0.0/8\n"
	tests := []struct {
		name string
		host string
		kind Kind
		dns  DNSOptions
		want string
	}{
		{"drops localhost servers", host, KindBridge, DNSOptions{},
			"nameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\nsortlist 10.0.0.0/8\n"},
		{"host mode keeps them", host, KindHost, DNSOptions{},
			"nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\nsortlist 10.0.0.0/8\n"},
		{"only localhost gives the defaults", "nameserver 127.0.0.1\nnameserver ::1\n", KindBridge, DNSOptions{},
			"nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"flags replace", host, KindBridge, DNSOptions{Servers: []string{"10.1.1.1", "fd00::1"}, Search: []string{"a.example", "b.example"}, Options: []string{"ndots:2"}},
			"nameserver 10.1.1.1\nnameserver fd00::1\nsearch a.example b.example\noptions ndots:2\nsortlist 10.0.0.0/8\n"},
		{"search . clears", host, KindBridge, DNSOptions{Search: []string{"."}},
			"nameserver 10.0.0.2\noptions edns0 trust-ad\nsortlist 10.0.0.0/8\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolvConf([]byte(tt.host), tt.kind, tt.dns)
			if err != nil || string(got) != tt.want {
				t.Fatalf("ResolvConf =\n%s(err %v)\nwant\n%s", got, err, tt.want)
			}
		})
	}
	if _, err := ResolvConf(nil, KindBridge, DNSOptions{Servers: []string{"dns.example"}}); !errors.Is(err, ErrInvalidDNS) {
		t.Fatalf("bad --dns: %v", err)
	}
}

func TestHostsLinks(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, _ := newTestManager(t)
	db, err := m.Setup(ctx, Request{ID: "hdb", Name: "db", Hostname: "dbhost", Mode: bridgeMode})
	if err != nil {
		t.Fatal(err)
	}
	app, err := m.Setup(ctx, Request{ID: "happ", Name: "app", Hostname: "happ", Mode: bridgeMode})
	if err != nil {
		t.Fatal(err)
	}
	dbIP, _ := db.Primary()
	appIP, _ := app.Primary()
	hosts, err := m.Hosts(ctx, "happ", HostsOptions{Links: []Link{{ID: "hdb", Name: "db", Alias: "database"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(hosts)
	for _, want := range []string{"127.0.0.1\tlocalhost\n", dbIP.Address.Addr().String() + "\tdatabase db dbhost\n", appIP.Address.Addr().String() + "\thapp app\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("hosts lacks %q:\n%s", want, s)
		}
	}
	if plain, _ := m.Hosts(ctx, "happ", HostsOptions{}); strings.Contains(string(plain), "\tdb") {
		t.Errorf("default bridge resolved a peer without --link:\n%s", plain)
	}
	if _, err := m.Hosts(ctx, "happ", HostsOptions{Links: []Link{{ID: "nosuch", Name: "nosuch"}}}); !errors.Is(err, ErrNoSandbox) {
		t.Errorf("link to unknown container: %v", err)
	}
	if _, err := m.Setup(ctx, Request{ID: "hhost", Mode: Mode{Kind: KindHost}}); err != nil {
		t.Fatal(err)
	}
	hh, err := m.Hosts(ctx, "hhost", HostsOptions{HostHosts: []byte("127.0.0.1 localhost myhost"), ExtraHosts: []string{"x:10.1.2.3"}})
	if err != nil || string(hh) != "127.0.0.1 localhost myhost\n10.1.2.3\tx\n" {
		t.Fatalf("host mode hosts = %q, %v", hh, err)
	}
}

func TestNetworkRecords(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, cfg := newTestManager(t)
	nets, err := m.Networks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nets {
		names = append(names, n.Name+"/"+n.Driver)
	}
	if strings.Join(names, " ") != "bridge/bridge host/host none/null" {
		t.Fatalf("predefined networks = %q", names)
	}
	def, err := m.Network(ctx, "bridge")
	if err != nil || def.Bridge != cfg.DefaultBridge || def.Subnet != cfg.DefaultSubnet {
		t.Fatalf("default network %+v, %v", def, err)
	}
	auto, err := m.CreateNetwork(ctx, CreateOptions{Name: "auto1"})
	if err != nil {
		t.Fatal(err)
	}
	auto2, err := m.CreateNetwork(ctx, CreateOptions{Name: "auto2", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if auto.Subnet.Overlaps(auto2.Subnet) || auto.Subnet.Overlaps(def.Subnet) || auto.Gateway != auto.Subnet.Addr().Next() || auto.UserSubnet {
		t.Fatalf("allocated subnets overlap: %v %v %v", auto.Subnet, auto2.Subnet, def.Subnet)
	}
	for _, tt := range []struct {
		name string
		opts CreateOptions
		is   error
		text string
	}{
		{"duplicate", CreateOptions{Name: "auto1"}, ErrNetworkExists, "network with name auto1 already exists"},
		{"predefined", CreateOptions{Name: "host"}, ErrPredefined, "host is a pre-defined network and cannot be created"},
		{"overlap", CreateOptions{Name: "ov", Subnet: auto.Subnet}, ErrPoolOverlap, "pool overlaps with other one on this address space"},
		{"bad name", CreateOptions{Name: "a b"}, ErrInvalidNetwork, `invalid network name "a b"`},
		{"driver", CreateOptions{Name: "ov", Driver: "overlay"}, ErrInvalidNetwork, `plugin "overlay" not found`},
		{"gateway", CreateOptions{Name: "gw", Subnet: mustPrefix(t, "10.217.1.0/24"), Gateway: mustPrefix(t, "10.217.2.1/32").Addr()}, ErrInvalidNetwork, "no matching subnet for gateway 10.217.2.1"},
	} {
		if _, err := m.CreateNetwork(ctx, tt.opts); !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: %v; want %v with %q", tt.name, err, tt.is, tt.text)
		}
	}
	if got, err := m.Network(ctx, auto2.ID[:10]); err != nil || got.Name != "auto2" || got.Labels["a"] != "b" {
		t.Fatalf("lookup by id prefix: %+v, %v", got, err)
	}
	if err := m.RemoveNetwork(ctx, "bridge"); !errors.Is(err, ErrPredefined) {
		t.Fatalf("rm bridge: %v", err)
	}
	if err := m.RemoveNetwork(ctx, "nosuch"); !errors.Is(err, ErrNetworkNotFound) {
		t.Fatalf("rm unknown: %v", err)
	}
	if err := m.RemoveNetwork(ctx, auto.ID); err != nil {
		t.Fatal(err)
	}
	// The records are in the store: a fresh store over the same directory
	// sees what the manager wrote.
	fs, err := NewFileStore(cfg.Root + "/networks")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := fs.Networks(ctx)
	if err != nil || len(stored) != 4 {
		t.Fatalf("stored networks = %d, %v; want 4", len(stored), err)
	}
}

func TestNewNeedsPlugins(t *testing.T) {
	_, err := New(context.Background(), Config{Root: t.TempDir(), PluginDirs: []string{t.TempDir()}})
	if !errors.Is(err, ErrPluginMissing) || !strings.Contains(err.Error(), "containernetworking-plugins") {
		t.Fatalf("New without plugins: %v", err)
	}
}
