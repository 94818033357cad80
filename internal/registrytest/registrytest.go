package registrytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is Debian's registry server.
const Binary = "/usr/bin/docker-registry"

// Registry is a running registry.
type Registry struct {
	// Host is 127.0.0.1:PORT, as image references name it.
	Host string
	// Dir holds its storage.
	Dir string
	// User and Password are the credentials when started with auth.
	User, Password string
}

// Options for Start.
type Options struct {
	// User and Password, when set, turn on htpasswd (basic) auth.
	User, Password string
	// Token, with User and Password, turns on token (Bearer) auth instead:
	// a token service of the test's own checks the credentials.
	Token bool
}

// Start runs a registry on a free loopback port until the test ends. It
// skips the test when docker-registry is not installed.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("docker-registry not installed (%s): apt-get install docker-registry", Binary)
	}
	dir := t.TempDir()
	port := FreePort(t)
	r := &Registry{Host: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, User: opts.User, Password: opts.Password}
	auth := ""
	listen := r.Host
	if opts.User != "" && opts.Token {
		ts := startTokenServer(t, dir, opts.User, opts.Password, r.Host)
		listen = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		ts.serveFront(t, r.Host, listen)
		auth = fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			ts.realm, ts.service, ts.issuer, ts.certFile)
	} else if opts.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(opts.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: fusebox-test\n    path: %s\n", pw)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "storage"), listen, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logb syncBuffer
	cmd := exec.Command(Binary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &logb, &logb
	cmd.Env = []string{"PATH=/usr/bin:/bin", "OTEL_TRACES_EXPORTER=none"}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return r
			}
		}
		select {
		case <-exited:
			t.Fatalf("docker-registry exited: %s", logb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", r.Host, err, logb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Skopeo runs skopeo with args and fails the test on error.
func Skopeo(t testing.TB, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	cmd := exec.Command("skopeo", append([]string{"--insecure-policy"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Seed copies a docker-archive (or any skopeo source: "oci:DIR") into the
// registry as repo:tag with skopeo, and returns the reference
// "127.0.0.1:PORT/repo:tag".
func (r *Registry) Seed(t testing.TB, src, repoTag string) string {
	t.Helper()
	if !strings.Contains(src, ":") {
		src = "docker-archive:" + src
	}
	ref := r.Host + "/" + repoTag
	args := []string{"copy", "-q", "--dest-tls-verify=false"}
	if r.User != "" {
		args = append(args, "--dest-creds", r.User+":"+r.Password)
	}
	Skopeo(t, append(args, src, "docker://"+ref)...)
	return ref
}

// CopyOut copies an image from the registry into an OCI layout directory
// with skopeo and returns the directory.
func (r *Registry) CopyOut(t testing.TB, repoTag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	args := []string{"copy", "-q", "--src-tls-verify=false"}
	if r.User != "" {
		args = append(args, "--src-creds", r.User+":"+r.Password)
	}
	Skopeo(t, append(args, "docker://"+r.Host+"/"+repoTag, "oci:"+dir+":x")...)
	return dir
}

// Proxy is a reverse proxy in front of a registry that can tamper with
// blob downloads.
type Proxy struct {
	// Host is the proxy's 127.0.0.1:PORT.
	Host string
	// Started is closed when a tampered blob download has begun (Stall).
	Started chan struct{}
	once    sync.Once
}

// Tamper says what a proxy does to blob bodies (GET /v2/…/blobs/…) larger
// than MinSize bytes.
type Tamper struct {
	// MinSize: smaller blobs (configs) pass untouched.
	MinSize int64
	// FlipByte flips one byte in the middle of the body.
	FlipByte bool
	// StallAfter, when > 0, sends that many bytes and then nothing until
	// the client goes away.
	StallAfter int64
}

// NewProxy starts a proxy to target (host:port, plain HTTP) until the test
// ends.
func NewProxy(t testing.TB, target string, tm Tamper) *Proxy {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	p := &Proxy{Started: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method != http.MethodGet || !strings.Contains(resp.Request.URL.Path, "/blobs/sha256:") ||
			resp.StatusCode != http.StatusOK || resp.ContentLength <= tm.MinSize {
			return nil
		}
		resp.Body = &tamperBody{rc: resp.Body, tm: tm, mid: resp.ContentLength / 2, ctx: resp.Request.Context(), p: p}
		return nil
	}
	rp.ErrorLog = log.New(io.Discard, "", 0) // stalled clients going away
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	p.Host = l.Addr().String()
	return p
}

type tamperBody struct {
	rc  io.ReadCloser
	tm  Tamper
	mid int64
	off int64
	ctx context.Context
	p   *Proxy
}

func (b *tamperBody) Read(buf []byte) (int, error) {
	if b.tm.StallAfter > 0 {
		if b.off >= b.tm.StallAfter {
			b.p.once.Do(func() { close(b.p.Started) })
			<-b.ctx.Done()
			return 0, b.ctx.Err()
		}
		if rest := b.tm.StallAfter - b.off; int64(len(buf)) > rest {
			buf = buf[:rest]
		}
	}
	n, err := b.rc.Read(buf)
	if b.tm.FlipByte && b.off <= b.mid && b.mid < b.off+int64(n) {
		buf[b.mid-b.off] ^= 0xff
	}
	b.off += int64(n)
	return n, err
}

func (b *tamperBody) Close() error { return b.rc.Close() }
