package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/image"
	"github.com/fusebox/fusebox/internal/registrytest"
	"github.com/fusebox/fusebox/registry"
	"github.com/fusebox/fusebox/registry/auth"
	"github.com/fusebox/fusebox/testdata"
)

func openStore(t testing.TB) *cas.Store {
	t.Helper()
	s, err := cas.Open(context.Background(), filepath.Join(t.TempDir(), "cas"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ref(t testing.TB, s string) reference.Named {
	t.Helper()
	r, err := image.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// events collects a pull's or push's progress as "id: status" lines.
type events struct{ lines []string }

func (e *events) report(ev registry.Event) {
	line := ev.Status
	if ev.ID != "" {
		line = ev.ID + ": " + ev.Status
	}
	if ev.Total > 0 && slices.Contains(e.lines, line) {
		return // one line per progress bar
	}
	e.lines = append(e.lines, line)
}

func (e *events) has(t testing.TB, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.ContainsFunc(e.lines, func(l string) bool { return strings.Contains(l, w) }) {
			t.Errorf("no event %q in:\n%s", w, strings.Join(e.lines, "\n"))
		}
	}
}

// snapshot is everything a store holds: its records and its object files.
type snapshot struct {
	records map[string][]byte
	files   []string
}

func snap(t testing.TB, s *cas.Store) snapshot {
	t.Helper()
	recs, err := s.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	filepath.WalkDir(filepath.Join(s.Root(), "objects"), func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return snapshot{recs, files}
}

// equal fails t when after (the receiver) differs from before: "+" marks
// a record that appeared, "-" one that went.
func (after snapshot) equal(t testing.TB, before snapshot) {
	t.Helper()
	if !maps.EqualFunc(after.records, before.records, func(x, y []byte) bool { return string(x) == string(y) }) {
		var diff []string
		for k := range after.records {
			if _, ok := before.records[k]; !ok {
				diff = append(diff, "+"+k)
			}
		}
		for k := range before.records {
			if _, ok := after.records[k]; !ok {
				diff = append(diff, "-"+k)
			}
		}
		t.Errorf("store records changed (%d → %d): %q", len(before.records), len(after.records), diff)
	}
	if !slices.Equal(after.files, before.files) {
		t.Errorf("store object files changed: %d → %d", len(before.files), len(after.files))
	}
}

// loadBusybox puts the busybox test image into a store straight from its
// layer tars, tagged name.
func loadBusybox(t testing.TB, s *cas.Store, name string) *testdata.Image {
	t.Helper()
	ctx := context.Background()
	img := testdata.Busybox(t)
	lease := s.NewLease()
	defer lease.Release(ctx)
	for i, p := range img.LayerTars {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.IngestLayer(ctx, f, cas.IngestOptions{DiffID: img.DiffIDs[i], Lease: lease})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := os.ReadFile(img.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBlob(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.PutImage(ctx, cas.ImageRecord{ID: img.ID, DiffIDs: img.DiffIDs}); err != nil && !errors.Is(err, cas.ErrExists) {
		t.Fatal(err)
	}
	if err := s.SetTag(ctx, ref(t, name).String(), img.ID); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPullBusybox(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	img := testdata.Busybox(t)
	name := reg.Seed(t, img.DockerArchive, "busybox:latest")
	s := openStore(t)

	var ev events
	pulled, err := registry.Pull(ctx, s, ref(t, name), registry.PullOptions{Progress: ev.report})
	if err != nil {
		t.Fatal(err)
	}
	if len(pulled) != 1 || pulled[0].ID != img.ID || !pulled[0].Updated {
		t.Fatalf("pulled %+v, want image %s", pulled, img.ID)
	}
	rec, err := s.Image(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.DiffIDs, img.DiffIDs) {
		t.Errorf("diff_ids %v, want %v", rec.DiffIDs, img.DiffIDs)
	}
	for _, d := range img.DiffIDs {
		if _, err := s.Layer(ctx, d); err != nil {
			t.Errorf("layer %s: %v", d, err)
		}
	}
	want := reg.Host + "/busybox@" + pulled[0].Digest.String()
	if !slices.Contains(rec.RepoDigests, want) || rec.Manifest != pulled[0].Digest {
		t.Errorf("repo digests %v manifest %s, want %s", rec.RepoDigests, rec.Manifest, want)
	}
	if id, err := s.Tag(ctx, ref(t, name).String()); err != nil || id != img.ID {
		t.Errorf("tag: %s %v", id, err)
	}
	ev.has(t, "latest: Pulling from busybox", "Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete",
		"Pull complete", "Digest: sha256:", "Status: Downloaded newer image for "+name)

	// Again: nothing to fetch, the tag already points there.
	ev = events{}
	before := snap(t, s)
	if _, err := registry.Pull(ctx, s, ref(t, name), registry.PullOptions{Progress: ev.report}); err != nil {
		t.Fatal(err)
	}
	ev.has(t, "Status: Image is up to date for "+name)
	if slices.ContainsFunc(ev.lines, func(l string) bool { return strings.Contains(l, "Pulling fs layer") }) {
		t.Errorf("second pull fetched layers:\n%s", strings.Join(ev.lines, "\n"))
	}
	snap(t, s).equal(t, before)

	// By digest: same image, no tag.
	byDigest := reg.Host + "/busybox@" + pulled[0].Digest.String()
	if p, err := registry.Pull(ctx, s, ref(t, byDigest), registry.PullOptions{}); err != nil || p[0].ID != img.ID {
		t.Fatalf("pull by digest: %+v %v", p, err)
	}
}

// TestPullFormats pulls what other tools push: OCI manifests with gzip and
// zstd layers, an index with two platforms, layers the store already has.
func TestPullFormats(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	base := tarOf(t, map[string]string{"etc/base": "base layer\n"})
	top := tarOf(t, map[string]string{"app/bin": "amd64 app\n"})
	armTop := tarOf(t, map[string]string{"app/bin": "arm64 app\n"})

	l := newLayout(t)
	zimg := l.image("amd64", "zstd", "zstd", base, top)
	reg.Seed(t, l.index(zimg), "formats:zstd")

	l = newLayout(t)
	amd := l.image("amd64", "multi", "gzip", base, top)
	arm := l.image("arm64", "multi", "gzip", base, armTop)
	registrytest.Skopeo(t, "copy", "-q", "--all", "--dest-tls-verify=false", l.index(amd, arm), "docker://"+reg.Host+"/formats:multi")

	s := openStore(t)
	var ev events
	if p, err := registry.Pull(ctx, s, ref(t, reg.Host+"/formats:zstd"), registry.PullOptions{Progress: ev.report}); err != nil || p[0].ID != zimg.ID {
		t.Fatalf("zstd pull: %+v %v", p, err)
	}
	// The amd64 image of the index shares both layers with the zstd one:
	// nothing is fetched.
	ev = events{}
	p, err := registry.Pull(ctx, s, ref(t, reg.Host+"/formats:multi"), registry.PullOptions{Progress: ev.report})
	if err != nil || p[0].ID != amd.ID {
		t.Fatalf("index pull (amd64): %+v %v, want %s", p, err, amd.ID)
	}
	if rec, err := s.Image(ctx, amd.ID); err != nil || rec.Manifest != amd.Manifest.Digest ||
		!slices.Contains(rec.RepoDigests, reg.Host+"/formats@"+p[0].Digest.String()) || p[0].Digest == amd.Manifest.Digest {
		t.Errorf("index pull record: %+v %v (list digest %s, manifest %s)", rec, err, p[0].Digest, amd.Manifest.Digest)
	}
	if n := strings.Count(strings.Join(ev.lines, "\n"), "Already exists"); n != 2 {
		t.Errorf("%d layers already existed, want 2:\n%s", n, strings.Join(ev.lines, "\n"))
	}
	// --platform linux/arm64: one layer shared, one fetched.
	ev = events{}
	p, err = registry.Pull(ctx, s, ref(t, reg.Host+"/formats:multi"), registry.PullOptions{Platform: "linux/arm64", Progress: ev.report})
	if err != nil || p[0].ID != arm.ID {
		t.Fatalf("index pull (arm64): %+v %v, want %s", p, err, arm.ID)
	}
	ev.has(t, "Already exists", "Pull complete")
	if _, err := registry.Pull(ctx, s, ref(t, reg.Host+"/formats:multi"), registry.PullOptions{Platform: "linux/s390x"}); !errors.Is(err, registry.ErrNotFound) ||
		!strings.Contains(err.Error(), "no matching manifest for linux/s390x") {
		t.Errorf("pull of a missing platform: %v", err)
	}

	// -a: every tag of the repository.
	s2 := openStore(t)
	all, err := registry.Pull(ctx, s2, reference.TrimNamed(ref(t, reg.Host+"/formats")), registry.PullOptions{AllTags: true})
	if err != nil || len(all) != 2 {
		t.Fatalf("pull -a: %+v %v", all, err)
	}
	tags, _ := s2.Tags(ctx)
	if len(tags) != 2 {
		t.Errorf("pull -a tags: %+v", tags)
	}
}

func TestPushRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	s := openStore(t)
	name := reg.Host + "/pushed:v1"
	img := loadBusybox(t, s, name)

	var ev events
	res, err := registry.Push(ctx, s, ref(t, name), registry.PushOptions{TempDir: t.TempDir(), Progress: ev.report})
	if err != nil {
		t.Fatal(err)
	}
	ev.has(t, "The push refers to repository ["+reg.Host+"/pushed]", "Preparing", "Pushed",
		"v1: digest: "+res.Digest.String()+" size: ")
	// skopeo's OCI copy converts the config, so the image ID is checked on
	// the registry's own manifest, the layers in skopeo's layout.
	_, diffIDs, types := diffIDsOfLayout(t, reg.CopyOut(t, "pushed:v1"))
	if !slices.Equal(diffIDs, img.DiffIDs) {
		t.Errorf("skopeo sees diff_ids %v, want %v", diffIDs, img.DiffIDs)
	}
	var m struct {
		Config struct{ Digest digest.Digest }
	}
	raw := registrytest.Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+name)
	if err := json.Unmarshal([]byte(raw), &m); err != nil || m.Config.Digest != img.ID || digest.FromString(raw) != res.Digest {
		t.Errorf("registry manifest: config %s (want %s), digest %s (want %s), %v", m.Config.Digest, img.ID, digest.FromString(raw), res.Digest, err)
	}
	for _, mt := range types {
		if mt != "application/vnd.oci.image.layer.v1.tar+gzip" && mt != registry.MediaTypeDockerLayerGzip {
			t.Errorf("layer media type %s", mt)
		}
	}
	rec, _ := s.Image(ctx, img.ID)
	if !slices.Contains(rec.RepoDigests, reg.Host+"/pushed@"+res.Digest.String()) {
		t.Errorf("repo digests after push: %v", rec.RepoDigests)
	}

	// Pushed again under another tag: every layer is already there.
	if err := s.SetTag(ctx, ref(t, reg.Host+"/pushed:v2").String(), img.ID); err != nil {
		t.Fatal(err)
	}
	ev = events{}
	if _, err := registry.Push(ctx, s, ref(t, reg.Host+"/pushed:v2"), registry.PushOptions{Progress: ev.report}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(ev.lines, "\n"), "Layer already exists"); n != len(img.DiffIDs) {
		t.Errorf("%d layers already existed, want %d:\n%s", n, len(img.DiffIDs), strings.Join(ev.lines, "\n"))
	}

	// Pulled back into an empty store: the same image ID.
	s2 := openStore(t)
	p, err := registry.Pull(ctx, s2, ref(t, name), registry.PullOptions{})
	if err != nil || p[0].ID != img.ID || p[0].Digest != res.Digest {
		t.Fatalf("pull back: %+v %v, want %s %s", p, err, img.ID, res.Digest)
	}

	if _, err := registry.Push(ctx, s, ref(t, reg.Host+"/nothing:here"), registry.PushOptions{}); !errors.Is(err, registry.ErrNoSuchLocalImage) {
		t.Errorf("push of a missing image: %v", err)
	}
}

func TestAuth(t *testing.T) {
	for _, token := range []bool{false, true} {
		name := "basic"
		if token {
			name = "token"
		}
		t.Run(name, func(t *testing.T) { testAuth(t, token) })
	}
}

func testAuth(t *testing.T, token bool) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{User: "alice", Password: "s3cret", Token: token})
	img := testdata.Busybox(t)
	name := reg.Seed(t, img.DockerArchive, "private/busybox:latest")

	good := registry.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: reg.Host}
	bad := registry.AuthConfig{Username: "alice", Password: "wrong", ServerAddress: reg.Host}
	if err := registry.Login(ctx, registry.Config{}, good); err != nil {
		t.Fatalf("login: %v", err)
	}
	for _, a := range []registry.AuthConfig{bad, {ServerAddress: "http://" + reg.Host + "/"}} {
		err := registry.Login(ctx, registry.Config{}, a)
		if !errors.Is(err, registry.ErrUnauthorized) || strings.Contains(err.Error(), "\n") {
			t.Errorf("login %+v: %v", a, err)
		}
	}

	s := openStore(t)
	before := snap(t, s)
	for _, a := range []*registry.AuthConfig{nil, &bad} {
		_, err := registry.Pull(ctx, s, ref(t, name), registry.PullOptions{Auth: a})
		if !errors.Is(err, registry.ErrUnauthorized) || strings.Contains(err.Error(), "\n") {
			t.Errorf("pull with %v: %v", a, err)
		}
		snap(t, s).equal(t, before)
	}
	if p, err := registry.Pull(ctx, s, ref(t, name), registry.PullOptions{Auth: &good}); err != nil || p[0].ID != img.ID {
		t.Fatalf("pull with credentials: %+v %v", p, err)
	}
	// The "auth" field alone (what config.json keeps) works too.
	s2 := openStore(t)
	loadBusybox(t, s2, reg.Host+"/private/pushed:1")
	if _, err := registry.Push(ctx, s2, ref(t, reg.Host+"/private/pushed:1"), registry.PushOptions{Auth: &registry.AuthConfig{Auth: "YWxpY2U6czNjcmV0"}}); err != nil {
		t.Fatalf("push with auth field: %v", err)
	}
}

// TestPullFailures: each failure is one clear line, matches its sentinel
// and leaves the store exactly as it was.
func TestPullFailures(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	img := testdata.Busybox(t)
	reg.Seed(t, img.DockerArchive, "busybox:latest")
	// A store that holds something else already, so "unchanged" means
	// more than "empty".
	other := tarOf(t, map[string]string{"other": "x\n"})
	l := newLayout(t)
	reg.Seed(t, l.index(l.image("amd64", "other", "gzip", other)), "other:1")
	s := openStore(t)
	if _, err := registry.Pull(ctx, s, ref(t, reg.Host+"/other:1"), registry.PullOptions{}); err != nil {
		t.Fatal(err)
	}

	corrupt := registrytest.NewProxy(t, reg.Host, registrytest.Tamper{MinSize: 4096, FlipByte: true})
	down := registrytest.FreePort(t)
	cases := []struct {
		name   string
		ref    string
		target error
		text   string
	}{
		{"missing tag", reg.Host + "/busybox:nope", registry.ErrNotFound, "manifest for " + reg.Host + "/busybox:nope not found"},
		{"missing repository", reg.Host + "/nothing:latest", registry.ErrNotFound, "not found"},
		{"registry down", "127.0.0.1:" + strconv.Itoa(down) + "/busybox:latest", registry.ErrUnreachable, "connection refused"},
		{"corrupt layer", corrupt.Host + "/busybox:latest", cas.ErrDigestMismatch, "digest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snap(t, s)
			_, err := registry.Pull(ctx, s, ref(t, c.ref), registry.PullOptions{})
			if err == nil {
				t.Fatal("pull succeeded")
			}
			if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.text) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want %v containing %q on one line", err, c.target, c.text)
			}
			snap(t, s).equal(t, before)
		})
	}

	t.Run("killed halfway", func(t *testing.T) {
		stall := registrytest.NewProxy(t, reg.Host, registrytest.Tamper{MinSize: 4096, StallAfter: 64 << 10})
		before := snap(t, s)
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-stall.Started:
			case <-time.After(30 * time.Second):
				t.Error("the pull never reached the stalled blob")
			}
			cancel()
		}()
		_, err := registry.Pull(cctx, s, ref(t, stall.Host+"/busybox:latest"), registry.PullOptions{})
		if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "\n") {
			t.Errorf("cancelled pull: %v", err)
		}
		snap(t, s).equal(t, before)
	})
}

func TestMirrorAndSearch(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.Options{})
	img := testdata.Busybox(t)
	reg.Seed(t, img.DockerArchive, "library/busybox:latest")
	reg.Seed(t, img.DockerArchive, "someone/busyapp:1")
	reg.Seed(t, img.DockerArchive, "tools/other:1")
	cfg := registry.Config{Mirrors: []string{"http://" + reg.Host}}

	// "busybox" is docker.io/library/busybox, served by the mirror.
	s := openStore(t)
	p, err := registry.Pull(ctx, s, ref(t, "busybox"), registry.PullOptions{Config: cfg})
	if err != nil || p[0].ID != img.ID {
		t.Fatalf("pull through mirror: %+v %v", p, err)
	}
	if id, err := s.Tag(ctx, "docker.io/library/busybox:latest"); err != nil || id != img.ID {
		t.Errorf("tag after mirror pull: %s %v", id, err)
	}

	res, err := registry.Search(ctx, "busy", registry.SearchOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Name != "busybox" || !res[0].IsOfficial || res[1].Name != "someone/busyapp" || res[1].IsOfficial {
		t.Errorf("search via mirror: %+v", res)
	}
	official := true
	if res, err := registry.Search(ctx, "busy", registry.SearchOptions{Config: cfg, Official: &official, Limit: 5}); err != nil || len(res) != 1 {
		t.Errorf("search is-official: %+v %v", res, err)
	}
	if res, err := registry.Search(ctx, "busy", registry.SearchOptions{Config: cfg, Stars: 3}); err != nil || len(res) != 0 {
		t.Errorf("search stars=3: %+v %v", res, err)
	}
	res, err = registry.Search(ctx, reg.Host+"/other", registry.SearchOptions{})
	if err != nil || len(res) != 1 || res[0].Name != reg.Host+"/tools/other" {
		t.Errorf("search of a named registry: %+v %v", res, err)
	}
}

func TestConfig(t *testing.T) {
	c := registry.Config{Insecure: []string{"10.1.0.0/16", "reg.example:5000"}}
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "127.9.9.9": true, "[::1]:5000": true,
		"10.1.2.3:5000": true, "10.2.0.1:5000": false, "reg.example:5000": true, "reg.example": false,
		"192.168.1.1:5000": false, "example.com": false,
	} {
		if got := c.AllowsHTTP(host); got != want {
			t.Errorf("AllowsHTTP(%s) = %v, want %v", host, got, want)
		}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "daemon.json")
	os.WriteFile(p, []byte(`{"registry-mirrors":["http://127.0.0.1:5000"],"insecure-registries":["10.0.0.0/8"],"debug":true}`), 0o600)
	got, err := registry.LoadConfigFile(p)
	if err != nil || len(got.Mirrors) != 1 || len(got.Insecure) != 1 {
		t.Errorf("load: %+v %v", got, err)
	}
	if got, err := registry.LoadConfigFile(filepath.Join(dir, "none.json")); err != nil || len(got.Mirrors) != 0 {
		t.Errorf("missing file: %+v %v", got, err)
	}
	for _, bad := range []string{`{"registry-mirrors":["ftp://x"]}`, `{"insecure-registries":["10.0.0.0/99"]}`, `{`} {
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := registry.LoadConfigFile(p); !errors.Is(err, registry.ErrBadConfig) {
			t.Errorf("load %s: %v", bad, err)
		}
	}
	for in, want := range map[string]string{"": auth.IndexServer, "docker.io": auth.IndexServer,
		"https://index.docker.io/v1/": auth.IndexServer, "127.0.0.1:5000": "127.0.0.1:5000", "http://127.0.0.1:5000/": "127.0.0.1:5000"} {
		if got := auth.NormalizeServer(in); got != want {
			t.Errorf("auth.NormalizeServer(%q) = %q, want %q", in, got, want)
		}
	}
	h, err := auth.EncodeHeader(registry.AuthConfig{Username: "u", Password: "p?>"})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := auth.DecodeHeader(h); err != nil || a.Username != "u" || a.Password != "p?>" {
		t.Errorf("auth header round trip: %+v %v", a, err)
	}
	if _, err := auth.DecodeHeader("!!!"); err == nil {
		t.Error("bad auth header accepted")
	}
}
