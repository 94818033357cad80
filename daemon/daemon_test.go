package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	moby "github.com/moby/moby/client"

	"github.com/fusebox/fusebox/api"
)

// startDaemon runs a daemon in-process on a temp root and socket and stops
// it when the test ends.
func startDaemon(t *testing.T) (*Daemon, string) {
	t.Helper()
	root := t.TempDir()
	host := "unix://" + filepath.Join(root, "fusebox.sock")
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, Config{Root: root, Host: host, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		d.Close()
	})
	c, err := moby.New(moby.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; ; i++ {
		if _, err := c.Ping(ctx, moby.PingOptions{}); err == nil {
			break
		} else if i > 200 {
			t.Fatalf("daemon did not answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d, host
}

func TestDaemonAPI(t *testing.T) {
	d, host := startDaemon(t)
	ctx := context.Background()
	c, err := moby.New(moby.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ping, err := c.Ping(ctx, moby.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	if ping.APIVersion != api.APIVersion || ping.OSType != "linux" || ping.SwarmStatus == nil || ping.SwarmStatus.NodeState != "inactive" {
		t.Errorf("ping %+v", ping)
	}
	if c.ClientVersion() != api.APIVersion {
		t.Errorf("client negotiated %s, want %s", c.ClientVersion(), api.APIVersion)
	}

	v, err := c.ServerVersion(ctx, moby.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != api.APIVersion || v.MinAPIVersion != api.MinAPIVersion || v.Version != api.Version || len(v.Components) != 1 {
		t.Errorf("version %+v", v)
	}

	info, err := c.Info(ctx, moby.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	i := info.Info
	if i.Driver != "fusebox" || i.DockerRootDir != d.Root() || i.NCPU < 1 || i.MemTotal <= 0 || i.CgroupDriver != "cgroupfs" || i.KernelVersion == "" || i.OperatingSystem == "" {
		t.Errorf("info %+v", i)
	}
	if i.CgroupVersion != "1" && i.CgroupVersion != "2" {
		t.Errorf("cgroup version %q", i.CgroupVersion)
	}

	// Raw HTTP: HEAD and GET /_ping carry the headers; unknown paths get
	// Docker's JSON error.
	sock, _ := api.SocketPath(host)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
		return dialer.DialContext(ctx, "unix", sock)
	}}}
	for _, m := range []string{"HEAD", "GET"} {
		req, _ := http.NewRequest(m, "http://fusebox/_ping", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, h := range []string{"Api-Version", "Ostype", "Docker-Experimental", "Builder-Version", "Swarm", "Server"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s /_ping: header %s missing", m, h)
			}
		}
	}
	resp, err := hc.Get("http://fusebox/v1.44/nothing/here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("unknown path: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	if b, err := os.ReadFile(filepath.Join(d.Root(), PIDName)); err != nil || strings.TrimSpace(string(b)) == "" {
		t.Errorf("pid file: %q %v", b, err)
	}
}

func TestRootLock(t *testing.T) {
	d, _ := startDaemon(t)
	_, err := New(context.Background(), Config{Root: d.Root(), Host: "unix://" + filepath.Join(t.TempDir(), "other.sock")})
	if !errors.Is(err, ErrRootLocked) {
		t.Fatalf("second daemon on the same root: err = %v, want ErrRootLocked", err)
	}
}

func TestServeRemovesSocket(t *testing.T) {
	root := t.TempDir()
	sock := filepath.Join(root, "s.sock")
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, Config{Root: root, Host: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// A stale socket file from a crashed daemon is replaced.
	os.WriteFile(sock, nil, 0o600)
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(filepath.Join(root, PIDName)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket still there after shutdown: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, api.LogName)); !strings.Contains(string(b), "shutting down") {
		t.Errorf("log has no shutdown record: %q", b)
	}
}

func TestSocketPath(t *testing.T) {
	for in, want := range map[string]string{"unix:///run/x.sock": "/run/x.sock", "": "/run/fusebox/fusebox.sock"} {
		if got, err := api.SocketPath(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"tcp://127.0.0.1:2375", "/run/x.sock", "unix://"} {
		if _, err := api.SocketPath(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

type netConn = net.Conn

var dialer net.Dialer
