package main

import (
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fusebox/fusebox/internal/registrytest"
	"github.com/fusebox/fusebox/testdata"
)

// registryEnv is a daemon env whose fusebox and docker CLIs share one
// docker config directory, as on a user's machine.
func registryEnv(t *testing.T) *env {
	e := newEnv(t)
	t.Setenv("DOCKER_CONFIG", filepath.Join(e.root, "docker-config"))
	return e
}

// objectFiles lists the store's object files, which a failed pull must
// not leave behind.
func (e *env) objectFiles() []string {
	var out []string
	filepath.WalkDir(filepath.Join(e.root, "cas", "objects"), func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// oneLine checks a failed command's error: exit 1 and a single line.
func oneLine(t *testing.T, what, errOut string, code int, want string) {
	t.Helper()
	if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, want) {
		t.Errorf("%s: exit %d, stderr %q, want one line containing %q", what, code, errOut, want)
	}
}

func TestPullPushCLI(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	img := testdata.Busybox(t)
	name := reg.Seed(t, img.DockerArchive, "busybox:latest")
	e := registryEnv(t)

	// A corrupt layer first, into the empty store.
	corrupt := registrytest.NewProxy(t, reg.Host, registrytest.Tamper{MinSize: 4096, FlipByte: true})
	_, errOut, code := e.fusebox("pull", corrupt.Host+"/busybox")
	oneLine(t, "pull of a corrupt layer", errOut, code, "digest mismatch")
	if out := e.storeState(); out != "" || len(e.objectFiles()) != 0 {
		t.Errorf("store after a corrupt pull: %q, %d object files", out, len(e.objectFiles()))
	}

	out := e.ok("pull", reg.Host+"/busybox")
	for _, want := range []string{"latest: Pulling from busybox", ": Pulling fs layer", ": Pull complete", "Digest: sha256:",
		"Status: Downloaded newer image for " + name, "\n" + name + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	if out := e.ok("images", "-q", "--no-trunc"); out != img.ID.String()+"\n" {
		t.Errorf("images after pull: %q, want %s", out, img.ID)
	}
	if out := e.ok("images", "--digests"); !regexp.MustCompile(regexp.QuoteMeta(reg.Host+"/busybox") + `\s+latest\s+sha256:[0-9a-f]{64}\s+` + img.ID.Encoded()[:12]).MatchString(out) {
		t.Errorf("images --digests:\n%s", out)
	}
	// The pulled digest names the image, for inspect and for run.
	dg := strings.TrimSpace(e.ok("images", "--digests", "--format", "{{.Digest}}", reg.Host+"/busybox"))
	byDigest := reg.Host + "/busybox@" + dg
	if out := e.ok("image", "inspect", "-f", "{{.Id}}", byDigest); strings.TrimSpace(out) != img.ID.String() {
		t.Errorf("inspect %s: %q, want %s", byDigest, out, img.ID)
	}
	if os.Geteuid() == 0 {
		if out := e.ok("run", "--rm", byDigest, "cat", "/"+testdata.BusyboxIndex); out != testdata.BusyboxIndexContent {
			t.Errorf("run %s: %q", byDigest, out)
		}
	}
	if _, errOut, code := e.fusebox("image", "inspect", reg.Host+"/busybox@sha256:"+strings.Repeat("0", 64)); code != 1 || !strings.Contains(errOut, "No such image") {
		t.Errorf("inspect of an unknown digest: exit %d, %q", code, errOut)
	}
	if out := e.ok("pull", "-q", name); out != name+"\n" {
		t.Errorf("pull -q: %q", out)
	}
	// A container runs from the pulled image, on the union filesystem.
	if os.Geteuid() == 0 {
		if out := e.ok("run", "--rm", name, "cat", "/"+testdata.BusyboxIndex); out != testdata.BusyboxIndexContent {
			t.Errorf("run of the pulled image: %q, want %q", out, testdata.BusyboxIndexContent)
		}
	}

	// Push under another name: every layer uploaded; again under a second
	// tag: all already there.
	e.ok("tag", name, reg.Host+"/copy:v1")
	out = e.ok("push", reg.Host+"/copy:v1")
	for _, want := range []string{"The push refers to repository [" + reg.Host + "/copy]", ": Mounted from busybox", "v1: digest: sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	e.ok("tag", name, reg.Host+"/copy:v2")
	if out := e.ok("push", reg.Host+"/copy:v2"); strings.Count(out, "Layer already exists") != len(img.DiffIDs) {
		t.Errorf("second push:\n%s", out)
	}

	// Failures: one line, exit 1, the store as it was.
	before, objects := e.storeState(), e.objectFiles()
	_, errOut, code = e.fusebox("pull", reg.Host+"/busybox:nope")
	oneLine(t, "pull of a missing tag", errOut, code, "manifest for "+reg.Host+"/busybox:nope not found")
	_, errOut, code = e.fusebox("pull", "127.0.0.1:1/busybox")
	oneLine(t, "pull from a registry that is down", errOut, code, "connection refused")
	_, errOut, code = e.fusebox("push", reg.Host+"/absent:v1")
	oneLine(t, "push of a missing image", errOut, code, "An image does not exist locally with the tag: "+reg.Host+"/absent")
	_, errOut, code = e.fusebox("pull", "-a", reg.Host+"/busybox:latest")
	oneLine(t, "pull -a with a tag", errOut, code, "tag can't be used with --all-tags/-a")
	if after := e.storeState(); after != before {
		t.Errorf("store changed by failures:\n%s\nwas\n%s", after, before)
	}
	if after := e.objectFiles(); !slices.Equal(after, objects) {
		t.Errorf("object files changed by failures: %d, were %d", len(after), len(objects))
	}

	// pull -a: both tags of copy.
	e.ok("rmi", reg.Host+"/copy:v1", reg.Host+"/copy:v2")
	out = e.ok("pull", "-a", reg.Host+"/copy")
	if !strings.Contains(out, "v1: Pulling from copy") || !strings.Contains(out, "v2: Pulling from copy") {
		t.Errorf("pull -a:\n%s", out)
	}
	if out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, reg.Host+"/copy:v1\n") || !strings.Contains(out, reg.Host+"/copy:v2\n") {
		t.Errorf("images after pull -a: %q", out)
	}
}

func TestLoginSearchCLI(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{User: "alice", Password: "s3cret"})
	img := testdata.Busybox(t)
	name := reg.Seed(t, img.DockerArchive, "team/busybox:1")
	e := registryEnv(t)
	cfgPath := filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json")

	_, errOut, code := e.fusebox("pull", name)
	oneLine(t, "pull without login", errOut, code, "unauthorized")
	_, errOut, code = e.fusebox("login", "-u", "alice", "-p", "wrong", reg.Host)
	if code != 1 || !strings.Contains(errOut, "unauthorized") || !strings.Contains(errOut, "WARNING! Using --password") {
		t.Errorf("login with a wrong password: %d %q", code, errOut)
	}
	if _, err := os.Stat(cfgPath); err == nil {
		t.Errorf("a failed login wrote %s", cfgPath)
	}
	if out, errOut, code := e.fuseboxIn([]byte("s3cret\n"), "login", "-u", "alice", "--password-stdin", reg.Host); code != 0 || out != "Login Succeeded\n" {
		t.Fatalf("login: %d %q %q", code, out, errOut)
	}
	var cf struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, _ := os.ReadFile(cfgPath)
	if err := json.Unmarshal(b, &cf); err != nil || cf.Auths[reg.Host].Auth != base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) {
		t.Errorf("config.json after login: %s %v", b, err)
	}
	e.ok("pull", name)
	out := e.ok("search", reg.Host+"/busy")
	if !regexp.MustCompile(`^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL\n` + regexp.QuoteMeta(reg.Host+"/team/busybox") + `\s+0\s*\n$`).MatchString(out) {
		t.Errorf("search:\n%s", out)
	}
	if out := e.ok("search", "--format", "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}", "--limit", "1", reg.Host+"/team"); out != reg.Host+"/team/busybox|0|\n" {
		t.Errorf("search --format: %q", out)
	}
	if out := e.ok("search", "--filter", "is-official=true", reg.Host+"/busy"); strings.Count(out, "\n") != 1 {
		t.Errorf("search --filter is-official=true: %q", out)
	}
	if out := e.ok("logout", reg.Host); out != "Removing login credentials for "+reg.Host+"\n" {
		t.Errorf("logout: %q", out)
	}
	if out := e.ok("logout", reg.Host); out != "Not logged in to "+reg.Host+"\n" {
		t.Errorf("second logout: %q", out)
	}
	b, _ = os.ReadFile(cfgPath)
	if strings.Contains(string(b), reg.Host) {
		t.Errorf("config.json after logout: %s", b)
	}
}

// TestDockerCLIRegistry runs the real docker CLI against the daemon: login
// (POST /auth), pull and push with X-Registry-Auth, search, logout, on a
// registry with token (Bearer) auth.
func TestDockerCLIRegistry(t *testing.T) {
	requireDocker(t)
	reg := registrytest.Start(t, registrytest.Options{User: "bob", Password: "hunter2", Token: true})
	img := testdata.Busybox(t)
	name := reg.Seed(t, img.DockerArchive, "busybox:latest")
	e := registryEnv(t)
	e.ok("version") // the docker CLI does not start the daemon

	if _, errOut, code := e.dockerIn([]byte("nope\n"), "login", "-u", "bob", "--password-stdin", reg.Host); code != 1 || !strings.Contains(errOut, "unauthorized") {
		t.Errorf("docker login with a wrong password: %d %q", code, errOut)
	}
	if out, errOut, code := e.dockerIn([]byte("hunter2\n"), "login", "-u", "bob", "--password-stdin", reg.Host); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %d %q %q", code, out, errOut)
	}
	out := e.dockerOK("pull", name)
	for _, want := range []string{"latest: Pulling from busybox", "Pull complete", "Digest: sha256:", "Status: Downloaded newer image for " + name} {
		if !strings.Contains(out, want) {
			t.Errorf("docker pull output lacks %q:\n%s", want, out)
		}
	}
	if out := e.dockerOK("images", "-q", "--no-trunc"); out != img.ID.String()+"\n" {
		t.Errorf("docker images after pull: %q", out)
	}
	if out := e.dockerOK("pull", name); !strings.Contains(out, "Status: Image is up to date for "+name) {
		t.Errorf("docker pull again:\n%s", out)
	}
	e.dockerOK("tag", name, reg.Host+"/mine:v1")
	out = e.dockerOK("push", reg.Host+"/mine:v1")
	if !strings.Contains(out, ": Mounted from busybox") || !regexp.MustCompile(`v1: digest: sha256:[0-9a-f]{64} size: \d+`).MatchString(out) {
		t.Errorf("docker push:\n%s", out)
	}
	if out := e.dockerOK("search", reg.Host+"/mi"); !strings.Contains(out, reg.Host+"/mine") || !strings.HasPrefix(out, "NAME") {
		t.Errorf("docker search:\n%s", out)
	}
	_, errOut, code := e.docker("pull", reg.Host+"/busybox:nope")
	oneLine(t, "docker pull of a missing tag", errOut, code, "not found")
	if out := e.dockerOK("logout", reg.Host); !strings.Contains(out, "Removing login credentials for "+reg.Host) {
		t.Errorf("docker logout: %q", out)
	}
	_, errOut, code = e.docker("pull", reg.Host+"/mine:v1")
	oneLine(t, "docker pull after logout", errOut, code, "unauthorized")
}

// TestRegistryMirror: a daemon whose daemon.json names a mirror pulls and
// searches docker.io names there, as Docker does with registry-mirrors.
func TestRegistryMirror(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	img := testdata.Busybox(t)
	reg.Seed(t, img.DockerArchive, "library/busybox:latest")
	e := registryEnv(t)
	if err := os.WriteFile(filepath.Join(e.root, "daemon.json"), []byte(`{"registry-mirrors": ["http://`+reg.Host+`"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := e.ok("pull", "busybox")
	if !strings.Contains(out, "latest: Pulling from library/busybox") || !strings.Contains(out, "Status: Downloaded newer image for busybox:latest") ||
		!strings.HasSuffix(out, "\ndocker.io/library/busybox:latest\n") {
		t.Errorf("pull through the mirror:\n%s", out)
	}
	if out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); out != "busybox:latest "+img.ID.Encoded()[:12]+"\n" {
		t.Errorf("images: %q", out)
	}
	if out := e.ok("search", "busy"); !regexp.MustCompile(`\nbusybox\s+0\s+\[OK\]\n`).MatchString(out) {
		t.Errorf("search through the mirror:\n%s", out)
	}
	// Pushing never goes to a mirror: docker.io itself is unreachable.
	_, errOut, code := e.fusebox("push", "busybox")
	if code != 1 || strings.Contains(errOut, reg.Host) {
		t.Errorf("push of a docker.io name: %d %q", code, errOut)
	}
}

// TestPullKilled kills the CLI in the middle of a layer download (a proxy
// stalls the blob): the daemon sees the client go, abandons the pull, and
// the store is as it was.
func TestPullKilled(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	img := testdata.Busybox(t)
	reg.Seed(t, img.DockerArchive, "busybox:latest")
	e := registryEnv(t)
	before, objects := e.storeState(), e.objectFiles()
	stall := registrytest.NewProxy(t, reg.Host, registrytest.Tamper{MinSize: 4096, StallAfter: 64 << 10})
	cmd := e.fuseboxCmd("pull", stall.Host+"/busybox")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stall.Started:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the pull never reached the stalled blob")
	}
	cmd.Process.Kill()
	cmd.Wait()
	// The daemon notices the closed connection and releases the lease.
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, _ := os.ReadFile(filepath.Join(e.root, "daemon.log"))
		if strings.Contains(string(log), "pull failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not abandon the pull:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after := e.storeState(); after != before {
		t.Errorf("store after a killed pull:\n%s\nwas\n%s", after, before)
	}
	if after := e.objectFiles(); !slices.Equal(after, objects) {
		t.Errorf("object files after a killed pull: %d, were %d", len(after), len(objects))
	}
	// Nothing half-stored blocks the next pull.
	if out := e.ok("pull", reg.Host+"/busybox"); !strings.Contains(out, "Downloaded newer image") {
		t.Errorf("pull after the killed one:\n%s", out)
	}
}

// TestDaemonRegistryFlags: the daemon's --registry-mirror flag does what
// daemon.json does; a bad value stops the daemon at once.
func TestDaemonRegistryFlags(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	img := testdata.Busybox(t)
	reg.Seed(t, img.DockerArchive, "library/busybox:latest")
	e := registryEnv(t)
	_, errOut, code := e.fusebox("daemon", "--registry-mirror", "ftp://"+reg.Host)
	oneLine(t, "daemon with a bad mirror", errOut, code, "invalid registry configuration")

	cmd := e.fuseboxCmd("daemon", "--registry-mirror", "http://"+reg.Host)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; e.daemonPID() == 0; i++ {
		if i > 400 {
			t.Fatal("daemon did not start")
		}
		time.Sleep(25 * time.Millisecond)
	}
	if out := e.ok("pull", "busybox:latest"); !strings.Contains(out, "Status: Downloaded newer image for busybox:latest") {
		t.Errorf("pull through the flag's mirror:\n%s", out)
	}
}
