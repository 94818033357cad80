package network

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/internal/testenv"
)

// needRoot skips tests that make namespaces, bridges and iptables rules.
func needRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "makes network namespaces, bridges and iptables rules")
	for _, p := range requiredPlugins {
		found := false
		for _, d := range DefaultPluginDirs {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				found = true
			}
		}
		if !found {
			t.Skipf("needs the CNI plugin %s (Debian: containernetworking-plugins)", p)
		}
	}
	for _, b := range []string{"busybox", "nsenter", "ip", "iptables-save"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s", b)
		}
	}
}

var testBridgeSeq atomic.Int32

// newTestManager makes a manager whose every file lives in a temporary
// directory, with a default network of its own (bridge fbtN, a 10.214.N/24
// subnet) so that tests never touch a real daemon's fusebox0.
func newTestManager(t *testing.T) (*Manager, Config) {
	t.Helper()
	dir := t.TempDir()
	n := testBridgeSeq.Add(1) + int32(os.Getpid()%50)*4
	cfg := Config{
		Root:          filepath.Join(dir, "root"),
		NetnsDir:      filepath.Join(dir, "netns"),
		DefaultBridge: fmt.Sprintf("fbt%d", n),
		DefaultSubnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 214, byte(n), 0}), 24),
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if err := m.Cleanup(ctx, nil); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		nets, _ := m.Networks(ctx)
		for _, n := range nets {
			if err := removeNetworkRules(n, cfg.DefaultBridge); err != nil {
				t.Errorf("cleanup: %v", err)
			}
			deleteLink(n.Bridge)
		}
		unix.Unmount(cfg.NetnsDir, unix.MNT_DETACH)
	})
	return m, cfg
}

// startHTTPD runs busybox httpd on port 80 inside the namespace at ns,
// serving a file whose content is body, and stops it when the test ends.
func startHTTPD(t *testing.T, ns, body string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+ns, "busybox", "httpd", "-f", "-p", "80", "-h", dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Wait until it listens, asking from inside its own namespace.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("timeout", "5", "nsenter", "--net="+ns, "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:80/").Output()
		if err == nil && string(out) == body {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("httpd in %s never answered: %v %q", ns, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpGet fetches a URL from the host with a short timeout.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// wgetIn fetches a URL from inside a namespace with busybox wget (its own
// -T timeout crashes busybox 1.35 on a refused connection, so timeout(1)).
func wgetIn(ns, url string) (string, error) {
	out, err := exec.Command("timeout", "5", "nsenter", "--net="+ns, "busybox", "wget", "-q", "-O", "-", url).CombinedOutput()
	return string(out), err
}

// linksIn lists the interface names inside a namespace.
func linksIn(t *testing.T, ns string) []string {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+ns, "ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link in %s: %v", ns, err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			names = append(names, name)
		}
	}
	return names
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
