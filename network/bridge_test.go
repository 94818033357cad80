package network

import (
	"context"
	"fmt"
	"testing"
)

func TestBridgePublishedPort(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	m, _ := newTestManager(t)
	ports, err := ParsePublish("0:80")
	if err != nil {
		t.Fatal(err)
	}
	web, err := m.Setup(ctx, Request{ID: "web1", Name: "web", Mode: Mode{Kind: KindBridge, Network: DefaultNetwork}, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	startHTTPD(t, web.NetnsPath, "hello from web\n")
	hp := web.Ports[0].HostPort
	if hp == 0 {
		t.Fatalf("no host port chosen: %+v", web.Ports)
	}
	got, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hp))
	if err != nil || got != "hello from web\n" {
		t.Fatalf("GET 127.0.0.1:%d = %q, %v", hp, got, err)
	}
	client, err := m.Setup(ctx, Request{ID: "client1", Name: "client", Mode: Mode{Kind: KindBridge, Network: DefaultNetwork}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := web.Primary()
	got, err = wgetIn(client.NetnsPath, fmt.Sprintf("http://%s:80/", p.Address.Addr()))
	if err != nil || got != "hello from web\n" {
		t.Fatalf("GET %s from client = %q, %v", p.Address.Addr(), got, err)
	}
	for _, id := range []string{"web1", "client1"} {
		if err := m.Teardown(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}
