package daemon

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	moby "github.com/moby/moby/client"
	digest "github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/api"
	"github.com/fusebox/fusebox/image"
)

// tarOf builds a layer tar from name → content (a name ending in / is a
// directory).
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	return b.Bytes()
}

// testImage makes a SaveImage with the given layers, a history entry per
// layer plus an empty one, and tags.
func testImage(t *testing.T, cmd string, tags []string, layers ...[]byte) image.SaveImage {
	t.Helper()
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	c := image.Config{}
	c.Created = &created
	c.Architecture, c.OS = "amd64", "linux"
	c.Config.Cmd = []string{cmd}
	c.RootFS.Type = "layers"
	img := image.SaveImage{RepoTags: tags}
	for i, l := range layers {
		l := l
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, digest.FromBytes(l))
		c.History = append(c.History, image.History{Created: &created, CreatedBy: "ADD layer " + string(rune('0'+i))})
		img.Layers = append(img.Layers, image.SaveLayer{DiffID: digest.FromBytes(l), Size: int64(len(l)), Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(l)), nil
		}})
	}
	c.History = append(c.History, image.History{Created: &created, CreatedBy: "CMD " + cmd, EmptyLayer: true})
	var err error
	if img.Config, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	return img
}

func archiveBytes(t *testing.T, images ...image.SaveImage) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := image.SaveArchive(context.Background(), &b, images); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newClient(t *testing.T, host string) *moby.Client {
	t.Helper()
	c, err := moby.New(moby.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// load posts an archive and returns the stream text, failing on an error.
func load(t *testing.T, c *moby.Client, archive []byte) string {
	t.Helper()
	out, err := tryLoad(c, archive)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return out
}

func tryLoad(c *moby.Client, archive []byte) (string, error) {
	res, err := c.ImageLoad(context.Background(), bytes.NewReader(archive), moby.ImageLoadWithQuiet(true))
	if err != nil {
		return "", err
	}
	defer res.Close()
	var text strings.Builder
	dec := json.NewDecoder(res)
	for {
		var m struct {
			Stream      string
			ErrorDetail *struct{ Message string }
		}
		if err := dec.Decode(&m); err == io.EOF {
			return text.String(), nil
		} else if err != nil {
			return text.String(), err
		}
		if m.ErrorDetail != nil {
			return text.String(), errdefs.ErrInvalidArgument.WithMessage(m.ErrorDetail.Message)
		}
		text.WriteString(m.Stream)
	}
}

// snapshot is the store's whole content, to compare before and after a
// failed operation.
func snapshot(t *testing.T, d *Daemon) map[string][]byte {
	t.Helper()
	recs, err := d.Store().Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestLoadListInspectSave(t *testing.T) {
	d, host := startDaemon(t)
	c := newClient(t, host)
	ctx := context.Background()
	base := tarOf(t, map[string]string{"bin/": "", "bin/sh": "shell", "etc/": "", "etc/passwd": "root:x:0:0"})
	top := tarOf(t, map[string]string{"app/": "", "app/run": "run"})
	one := testImage(t, "one", []string{"docker.io/library/one:latest"}, base, top)
	two := testImage(t, "two", nil, base)
	out := load(t, c, archiveBytes(t, one, two))
	oneID, twoID := digest.FromBytes(one.Config), digest.FromBytes(two.Config)
	if !strings.Contains(out, "Loaded image: one:latest") || !strings.Contains(out, "Loaded image ID: "+twoID.String()) {
		t.Errorf("load output %q", out)
	}

	list, err := c.ImageList(ctx, moby.ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("%d images", len(list.Items))
	}
	dangling, err := c.ImageList(ctx, moby.ImageListOptions{Filters: moby.Filters{}.Add("dangling", "true")})
	if err != nil || len(dangling.Items) != 1 || dangling.Items[0].ID != twoID.String() {
		t.Fatalf("dangling: %+v %v", dangling.Items, err)
	}
	byRef, err := c.ImageList(ctx, moby.ImageListOptions{Filters: moby.Filters{}.Add("reference", "one")})
	if err != nil || len(byRef.Items) != 1 || !reflect.DeepEqual(byRef.Items[0].RepoTags, []string{"one:latest"}) {
		t.Fatalf("reference filter: %+v %v", byRef.Items, err)
	}

	insp, err := c.ImageInspect(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	if insp.ID != oneID.String() || len(insp.RootFS.Layers) != 2 || insp.Config.Cmd[0] != "one" || insp.Size != int64(len("shell")+len("root:x:0:0")+len("run")) {
		t.Errorf("inspect %+v", insp.InspectResponse)
	}
	// By ID prefix, with and without the algorithm.
	for _, name := range []string{oneID.Encoded()[:12], "sha256:" + oneID.Encoded()[:8], oneID.String()} {
		if r, err := c.ImageInspect(ctx, name); err != nil || r.ID != oneID.String() {
			t.Errorf("inspect %s: %v", name, err)
		}
	}
	if _, err := c.ImageInspect(ctx, "nothere"); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image: nothere:latest") {
		t.Errorf("unknown image: %v", err)
	}

	hist, err := c.ImageHistory(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.Items) != 3 || hist.Items[0].ID != oneID.String() || hist.Items[1].ID != "<missing>" || hist.Items[0].Size != 0 || hist.Items[1].Size != 3 || hist.Items[0].CreatedBy != "CMD one" {
		t.Errorf("history %+v", hist.Items)
	}

	// Save both and read the archive back: same IDs, same diff_ids.
	res, err := c.ImageSave(ctx, []string{"one", twoID.Encoded()[:12]})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "saved.tar")
	f, _ := os.Create(p)
	io.Copy(f, res)
	res.Close()
	f.Close()
	a, err := image.OpenArchive(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got := map[digest.Digest][]string{}
	for _, img := range a.Images {
		got[img.ID] = img.RepoTags
		for _, l := range img.Layers {
			rc, _ := l.Open()
			if dg, err := digest.FromReader(rc); err != nil || dg != l.DiffID {
				t.Errorf("saved layer reads as %s, want %s (%v)", dg, l.DiffID, err)
			}
			rc.Close()
		}
	}
	if !reflect.DeepEqual(got, map[digest.Digest][]string{oneID: {"docker.io/library/one:latest"}, twoID: nil}) {
		t.Errorf("saved images %v", got)
	}
	if _, err := c.ImageSave(ctx, []string{"nothere"}); !errdefs.IsNotFound(err) {
		t.Errorf("save unknown: %v", err)
	}

	info, err := c.Info(ctx, moby.InfoOptions{})
	if err != nil || info.Info.Images != 2 {
		t.Errorf("info images %d %v", info.Info.Images, err)
	}
	_ = d
}

func TestTagAndRemove(t *testing.T) {
	_, host := startDaemon(t)
	c := newClient(t, host)
	ctx := context.Background()
	img := testImage(t, "x", []string{"docker.io/library/x:1"}, tarOf(t, map[string]string{"f": "data"}))
	id := digest.FromBytes(img.Config)
	load(t, c, archiveBytes(t, img))

	if _, err := c.ImageTag(ctx, moby.ImageTagOptions{Source: "x:1", Target: "example.com/team/y:v2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImageTag(ctx, moby.ImageTagOptions{Source: "nothere", Target: "z"}); !errdefs.IsNotFound(err) {
		t.Errorf("tag unknown: %v", err)
	}
	insp, _ := c.ImageInspect(ctx, id.String())
	if !reflect.DeepEqual(insp.RepoTags, []string{"x:1", "example.com/team/y:v2"}) {
		t.Errorf("tags %v", insp.RepoTags)
	}
	// By ID with two tags: refused without force.
	if _, err := c.ImageRemove(ctx, id.Encoded()[:12], moby.ImageRemoveOptions{}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "referenced in multiple repositories") {
		t.Errorf("rmi by id: %v", err)
	}
	// By name: untag only.
	res, err := c.ImageRemove(ctx, "x:1", moby.ImageRemoveOptions{})
	if err != nil || len(res.Items) != 1 || res.Items[0].Untagged != "x:1" {
		t.Fatalf("rmi x:1: %+v %v", res.Items, err)
	}
	// The last tag: untag and delete.
	res, err = c.ImageRemove(ctx, "example.com/team/y:v2", moby.ImageRemoveOptions{})
	if err != nil || len(res.Items) != 2 || res.Items[1].Deleted != id.String() {
		t.Fatalf("rmi last tag: %+v %v", res.Items, err)
	}
	if _, err := c.ImageRemove(ctx, "x:1", moby.ImageRemoveOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("rmi again: %v", err)
	}

	// Force by ID removes every tag and the image.
	load(t, c, archiveBytes(t, img))
	c.ImageTag(ctx, moby.ImageTagOptions{Source: "x:1", Target: "y"})
	res, err = c.ImageRemove(ctx, id.Encoded()[:5], moby.ImageRemoveOptions{Force: true})
	if err != nil || len(res.Items) != 3 {
		t.Fatalf("rmi -f: %+v %v", res.Items, err)
	}
	list, _ := c.ImageList(ctx, moby.ImageListOptions{All: true})
	if len(list.Items) != 0 {
		t.Errorf("images left: %+v", list.Items)
	}
}

func TestImportAndPrune(t *testing.T) {
	d, host := startDaemon(t)
	c := newClient(t, host)
	ctx := context.Background()
	rootfs := tarOf(t, map[string]string{"bin/": "", "bin/hello": "hello"})
	res, err := c.ImageImport(ctx, moby.ImageImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, "imported:v1",
		moby.ImageImportOptions{Message: "from a test", Changes: []string{`CMD ["/bin/hello"]`, "ENV A=1", "WORKDIR /bin"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res)
	res.Close()
	var m struct{ Status string }
	json.Unmarshal(b, &m)
	insp, err := c.ImageInspect(ctx, "imported:v1")
	if err != nil {
		t.Fatal(err)
	}
	if insp.ID != m.Status || insp.Comment != "from a test" || insp.Config.WorkingDir != "/bin" || insp.Config.Env[0] != "A=1" || insp.RootFS.Layers[0] != digest.FromBytes(rootfs).String() {
		t.Errorf("imported %+v (status %q)", insp.InspectResponse, m.Status)
	}

	// Bad changes and bad names fail before the store is touched.
	before := snapshot(t, d)
	for _, tc := range []struct {
		ref     string
		changes []string
	}{{"ok:1", []string{"RUN rm -rf /"}}, {"ok:1", []string{"EXPOSE nope"}}} {
		_, err := c.ImageImport(ctx, moby.ImageImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, tc.ref, moby.ImageImportOptions{Changes: tc.changes})
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("%v: err = %v", tc.changes, err)
		}
	}
	// Not a tar at all.
	if _, err := c.ImageImport(ctx, moby.ImageImportSource{Source: strings.NewReader("garbage, not a tarball"), SourceName: "-"}, "bad:1", moby.ImageImportOptions{}); err == nil {
		t.Error("import of garbage succeeded")
	}
	if after := snapshot(t, d); !reflect.DeepEqual(before, after) {
		t.Error("failed imports changed the store")
	}

	// An untagged import is dangling and prune removes it.
	res, err = c.ImageImport(ctx, moby.ImageImportSource{Source: bytes.NewReader(tarOf(t, map[string]string{"other": "x"})), SourceName: "-"}, "", moby.ImageImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res)
	res.Close()
	pr, err := c.ImagePrune(ctx, moby.ImagePruneOptions{})
	if err != nil || len(pr.Report.ImagesDeleted) != 1 || pr.Report.SpaceReclaimed == 0 {
		t.Fatalf("prune: %+v %v", pr.Report, err)
	}
	list, _ := c.ImageList(ctx, moby.ImageListOptions{})
	if len(list.Items) != 1 {
		t.Errorf("after prune: %d images", len(list.Items))
	}
	// prune -a removes the tagged one too.
	pr, err = c.ImagePrune(ctx, moby.ImagePruneOptions{Filters: moby.Filters{}.Add("dangling", "false")})
	if err != nil || len(pr.Report.ImagesDeleted) != 2 {
		t.Fatalf("prune -a: %+v %v", pr.Report, err)
	}
}

func TestBadLoads(t *testing.T) {
	d, host := startDaemon(t)
	c := newClient(t, host)
	good := testImage(t, "g", []string{"docker.io/library/good:1"}, tarOf(t, map[string]string{"a": "a"}))
	load(t, c, archiveBytes(t, good))
	before := snapshot(t, d)

	goodBytes := archiveBytes(t, good)
	// A layer whose content does not match its diff_id.
	wrong := testImage(t, "w", []string{"docker.io/library/wrong:1"}, tarOf(t, map[string]string{"b": "b"}))
	wrong.Layers[0].Open = func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarOf(t, map[string]string{"c": "c"}))), nil
	}
	wrongCfg := wrong.Config
	var wrongArchive bytes.Buffer
	{
		// SaveArchive refuses mismatched layers, so write this one by hand:
		// the config names diff_id(b), the blob holds c.
		c := tarOf(t, map[string]string{"c": "c"})
		bad := digest.FromBytes(tarOf(t, map[string]string{"b": "b"}))
		tw := tar.NewWriter(&wrongArchive)
		add := func(name string, body []byte) {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
			tw.Write(body)
		}
		add("blobs/sha256/"+digest.FromBytes(wrongCfg).Encoded(), wrongCfg)
		add("blobs/sha256/"+bad.Encoded(), c)
		m, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/" + digest.FromBytes(wrongCfg).Encoded(), "RepoTags": []string{"wrong:1"}, "Layers": []string{"blobs/sha256/" + bad.Encoded()}}})
		add("manifest.json", m)
		tw.Close()
	}
	// A layer that escapes its root.
	evil := testImage(t, "e", []string{"docker.io/library/evil:1"}, tarOf(t, map[string]string{"../../etc/evil": "x"}))

	tests := []struct {
		name string
		data []byte
	}{
		{"truncated", goodBytes[:len(goodBytes)-3000]},
		{"garbage", []byte("this is not an archive")},
		{"empty", nil},
		{"wrong diff_id", wrongArchive.Bytes()},
		{"traversal in layer", archiveBytes(t, evil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tryLoad(c, tt.data)
			if err == nil {
				t.Fatal("bad archive loaded")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if after := snapshot(t, d); !reflect.DeepEqual(before, after) {
				t.Error("failed load changed the store")
			}
		})
	}
	// A compressed bomb: small on the wire, over the limit unpacked.
	t.Run("decompression bomb", func(t *testing.T) {
		old := MaxArchiveSize
		MaxArchiveSize = 1 << 20
		defer func() { MaxArchiveSize = old }()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(make([]byte, 8<<20))
		zw.Close()
		_, err := tryLoad(c, gz.Bytes())
		if err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
			t.Fatalf("err = %v", err)
		}
		if after := snapshot(t, d); !reflect.DeepEqual(before, after) {
			t.Error("failed load changed the store")
		}
	})
	// Nothing left in the spool either.
	if ents, _ := os.ReadDir(d.tmpDir()); len(ents) != 0 {
		t.Errorf("spool not empty: %v", ents)
	}
}

func TestStoreEndpoints(t *testing.T) {
	_, host := startDaemon(t)
	c := newClient(t, host)
	shared := tarOf(t, map[string]string{"big": strings.Repeat("x", 10000)})
	load(t, c, archiveBytes(t,
		testImage(t, "a", []string{"docker.io/library/a:1"}, shared, tarOf(t, map[string]string{"a": "1"})),
		testImage(t, "b", []string{"docker.io/library/b:1"}, tarOf(t, map[string]string{"copy-of-big": strings.Repeat("x", 10000)}))))
	du, err := c.DiskUsage(context.Background(), moby.DiskUsageOptions{Images: true})
	if err != nil || du.Images.TotalCount != 2 {
		t.Fatalf("df: %+v %v", du.Images, err)
	}
	sock, _ := api.SocketPath(host)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
		return dialer.DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://fusebox/fusebox/store/usage")
	if err != nil {
		t.Fatal(err)
	}
	var u struct{ SavedBytes, LogicalBytes int64 }
	json.NewDecoder(resp.Body).Decode(&u)
	resp.Body.Close()
	if u.SavedBytes != 10000 {
		t.Errorf("dedup saved %d bytes, want 10000 (logical %d)", u.SavedBytes, u.LogicalBytes)
	}
	resp, err = hc.Post("http://fusebox/fusebox/store/fsck", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Objects  int
		Problems []any
	}
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if rep.Objects == 0 || len(rep.Problems) != 0 {
		t.Errorf("fsck %+v", rep)
	}
}
