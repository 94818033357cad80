package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/image"
)

// layer builds a layer tar from name → content.
func layer(t *testing.T, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o755, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	return b.Bytes()
}

// writeArchive saves a two-layer image tagged tag into a docker-archive
// file and returns its path and image ID.
func writeArchive(t *testing.T, tag string) (string, digest.Digest, []digest.Digest) {
	t.Helper()
	created := time.Now().Add(-50 * time.Hour).UTC()
	l1 := layer(t, "bin/tool", strings.Repeat("t", 4000))
	l2 := layer(t, "etc/conf", "x=1")
	c := image.Config{}
	c.Created = &created
	c.Architecture, c.OS = "amd64", "linux"
	c.Config.Cmd = []string{"/bin/tool"}
	c.RootFS.Type = "layers"
	c.RootFS.DiffIDs = []digest.Digest{digest.FromBytes(l1), digest.FromBytes(l2)}
	c.History = []image.History{
		{Created: &created, CreatedBy: "/bin/sh -c #(nop) ADD file:0123456789abcdef in / "},
		{Created: &created, CreatedBy: "/bin/sh -c echo x=1 > /etc/conf", Comment: "second"},
		{Created: &created, CreatedBy: `/bin/sh -c #(nop)  CMD ["/bin/tool"]`, EmptyLayer: true},
	}
	cfg, _ := json.Marshal(c)
	img := image.SaveImage{Config: cfg, RepoTags: []string{tag}}
	for _, l := range [][]byte{l1, l2} {
		l := l
		img.Layers = append(img.Layers, image.SaveLayer{DiffID: digest.FromBytes(l), Size: int64(len(l)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil }})
	}
	p := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := image.SaveArchive(context.Background(), f, []image.SaveImage{img}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p, digest.FromBytes(cfg), c.RootFS.DiffIDs
}

// storeState is the store's on-disk state as the CLI sees it: the list of
// images with their tags, for before/after comparisons.
func (e *env) storeState() string {
	e.t.Helper()
	return e.ok("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}} {{.Size}}")
}

func TestImageCommands(t *testing.T) {
	e := newEnv(t)
	p, id, diffIDs := writeArchive(t, "docker.io/library/tool:1.0")
	short := id.Encoded()[:12]

	if out := e.ok("load", "-i", p); out != "Loaded image: tool:1.0\n" {
		t.Errorf("load: %q", out)
	}
	out := e.ok("images")
	want := regexp.MustCompile(`^REPOSITORY   TAG       IMAGE ID       CREATED      SIZE\ntool         1\.0       ` + short + `   2 days ago   4kB\n$`)
	if !want.MatchString(out) {
		t.Errorf("images:\n%s", out)
	}
	if out := e.ok("images", "-q"); out != short+"\n" {
		t.Errorf("images -q: %q", out)
	}
	if out := e.ok("images", "--no-trunc", "--format", "{{.ID}}"); out != id.String()+"\n" {
		t.Errorf("images --no-trunc: %q", out)
	}
	if out := e.ok("images", "--format", "table {{.Repository}}\t{{.Tag}}"); out != "REPOSITORY   TAG\ntool         1.0\n" {
		t.Errorf("images --format table: %q", out)
	}
	if out := e.ok("images", "--digests"); !strings.Contains(out, "DIGEST") || !strings.Contains(out, "<none>") {
		t.Errorf("images --digests:\n%s", out)
	}
	if out := e.ok("images", "-f", "dangling=true", "-q"); out != "" {
		t.Errorf("dangling: %q", out)
	}

	out = e.ok("history", "tool:1.0")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$`).MatchString(lines[0]) || !strings.HasPrefix(lines[1], short) ||
		!strings.HasPrefix(lines[2], "<missing>") || !strings.Contains(lines[2], "second") || !strings.Contains(lines[3], "…") {
		t.Errorf("history:\n%s", out)
	}
	if out := e.ok("history", "-q", "tool:1.0"); out != short+"\n<missing>\n<missing>\n" {
		t.Errorf("history -q: %q", out)
	}
	if out := e.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "tool:1.0"); !strings.Contains(out, "ADD file:0123456789abcdef in / |4kB") {
		t.Errorf("history --no-trunc: %q", out)
	}

	if out := e.ok("history", "--human=false", "--format", "{{.Size}}", "tool:1.0"); out != "0\n3\n4000\n" {
		t.Errorf("history --human=false: %q", out)
	}
	e.ok("tag", "tool:1.0", "example.com/me/tool:latest")
	if out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); out != "tool:1.0\nexample.com/me/tool:latest\n" && out != "example.com/me/tool:latest\ntool:1.0\n" {
		t.Errorf("after tag: %q", out)
	}

	var insp []struct {
		ID       string `json:"Id"`
		RepoTags []string
		RootFS   struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(e.ok("image", "inspect", "tool:1.0")), &insp); err != nil || len(insp) != 1 || insp[0].ID != id.String() || len(insp[0].RootFS.Layers) != 2 {
		t.Errorf("image inspect: %+v %v", insp, err)
	}
	if out := e.ok("image", "inspect", "--format", "{{.Id}}", short); out != id.String()+"\n" {
		t.Errorf("image inspect --format: %q", out)
	}

	// Save, remove, load again: same ID, same diff_ids.
	saved := filepath.Join(t.TempDir(), "saved.tar")
	e.ok("save", "-o", saved, "tool:1.0")
	a, err := image.OpenArchive(saved)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Images) != 1 || a.Images[0].ID != id || !reflect.DeepEqual([]digest.Digest{a.Images[0].Layers[0].DiffID, a.Images[0].Layers[1].DiffID}, diffIDs) {
		t.Errorf("saved archive: %+v", a.Images)
	}
	a.Close()

	_, errOut, code := e.fusebox("rmi", short)
	if code != 1 || !strings.Contains(errOut, "must be forced") {
		t.Errorf("rmi by ID of a twice-tagged image: %d %q", code, errOut)
	}
	if out := e.ok("rmi", "example.com/me/tool"); out != "Untagged: example.com/me/tool:latest\n" {
		t.Errorf("rmi untag: %q", out)
	}
	if out := e.ok("rmi", "tool:1.0"); out != "Untagged: tool:1.0\nDeleted: "+id.String()+"\n" {
		t.Errorf("rmi delete: %q", out)
	}
	if out := e.ok("images", "-q"); out != "" {
		t.Errorf("images left: %q", out)
	}
	if out := e.ok("load", "-q", "-i", saved); out != "Loaded image: tool:1.0\n" {
		t.Errorf("reload: %q", out)
	}
	if out := e.ok("images", "-q", "--no-trunc"); out != id.String()+"\n" {
		t.Errorf("reloaded ID: %q", out)
	}
	// Stdin works for load and import.
	data, _ := os.ReadFile(saved)
	if out, errOut, code := e.fuseboxIn(data, "load"); code != 0 || out != "Loaded image: tool:1.0\n" {
		t.Errorf("load from stdin: %d %q %q", code, out, errOut)
	}

	rootfs := layer(t, "hello", "world")
	out, errOut, code = e.fuseboxIn(rootfs, "import", "-c", "CMD [\"/hello\"]", "-c", "ENV K=V", "-m", "imported", "-", "imp:v1")
	if code != 0 || !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("import: %d %q %q", code, out, errOut)
	}
	if out := e.ok("image", "inspect", "--format", "{{json .Config.Cmd}} {{.Comment}} {{index .Config.Env 0}}", "imp:v1"); out != "[\"/hello\"] imported K=V\n" {
		t.Errorf("imported config: %q", out)
	}
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(tarball, rootfs, 0o644)
	e.ok("import", tarball)
	if out := e.ok("images", "-f", "dangling=true", "--format", "{{.Repository}}:{{.Tag}}"); out != "<none>:<none>\n" {
		t.Errorf("dangling after untagged import: %q", out)
	}
	if out := e.ok("image", "prune", "-f"); !strings.Contains(out, "Total reclaimed space:") || !strings.Contains(out, "deleted: sha256:") {
		t.Errorf("prune: %q", out)
	}
	if out := e.ok("system", "df"); !strings.Contains(out, "Images          2") || !strings.Contains(out, "Saved by dedup:") {
		t.Errorf("system df:\n%s", out)
	}
	if out := e.ok("system", "fsck"); !strings.Contains(out, ": 0 problems") {
		t.Errorf("system fsck: %q", out)
	}
}

func TestImageCommandErrors(t *testing.T) {
	e := newEnv(t)
	p, _, _ := writeArchive(t, "docker.io/library/tool:1.0")
	e.ok("load", "-i", p)
	before := e.storeState()

	good, _ := os.ReadFile(p)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		f := filepath.Join(dir, name)
		os.WriteFile(f, b, 0o644)
		return f
	}
	evil := layer(t, "../../escape", "x")
	tests := []struct {
		name  string
		args  []string
		stdin []byte
		want  string
	}{
		{"truncated archive", []string{"load", "-i", write("trunc.tar", good[:len(good)/2])}, nil, "invalid image archive"},
		{"not an archive", []string{"load", "-i", write("junk.tar", []byte("junk"))}, nil, "invalid image archive"},
		{"missing file", []string{"load", "-i", filepath.Join(dir, "nope.tar")}, nil, "no such file"},
		{"unknown image", []string{"rmi", "nothere"}, nil, "No such image: nothere:latest"},
		{"unknown history", []string{"history", "nothere"}, nil, "No such image"},
		{"unknown inspect", []string{"image", "inspect", "nothere"}, nil, "No such image"},
		{"unknown save", []string{"save", "-o", filepath.Join(dir, "x.tar"), "nothere"}, nil, "No such image"},
		{"bad reference", []string{"tag", "tool:1.0", "UPPER"}, nil, "UPPER"},
		{"bad change", []string{"import", "-c", "RUN rm -rf /", "-", "x:1"}, layer(t, "a", "b"), "not a valid change command"},
		{"traversal import", []string{"import", "-", "x:2"}, evil, "out of the layer"},
		{"bad flag", []string{"images", "--nope"}, nil, "unknown flag"},
		{"bad filter", []string{"images", "-f", "color=red"}, nil, "invalid filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := e.fuseboxIn(tt.stdin, tt.args...)
			want := 1
			if strings.HasPrefix(tt.want, "unknown flag") {
				want = 125 // Docker's status for the CLI's own failure
			}
			if code != want {
				t.Errorf("exit %d, want %d (stdout %q)", code, want, out)
			}
			if !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
				t.Errorf("stderr %q, want one line with %q", errOut, tt.want)
			}
			if after := e.storeState(); after != before {
				t.Errorf("store changed:\n%s\nwas\n%s", after, before)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); !os.IsNotExist(err) {
		t.Error("a failed save left a file behind")
	}
}

func TestDockerCLIImages(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	e.ok("version")
	p, id, diffIDs := writeArchive(t, "docker.io/library/tool:1.0")
	short := id.Encoded()[:12]

	if out := e.dockerOK("load", "-i", p); !strings.Contains(out, "Loaded image: tool:1.0") {
		t.Errorf("docker load: %q", out)
	}
	if out := e.dockerOK("images"); !regexp.MustCompile(`tool\s+1\.0\s+` + short + `\s+2 days ago\s+4kB`).MatchString(out) {
		t.Errorf("docker images:\n%s", out)
	}
	if out := e.dockerOK("history", "tool:1.0"); !strings.Contains(out, short) || strings.Count(out, "<missing>") != 2 {
		t.Errorf("docker history:\n%s", out)
	}
	e.dockerOK("tag", "tool:1.0", "mine:v2")
	if out := e.dockerOK("image", "inspect", "--format", "{{.Id}} {{len .RootFS.Layers}}", "mine:v2"); out != id.String()+" 2\n" {
		t.Errorf("docker image inspect: %q", out)
	}
	saved := filepath.Join(t.TempDir(), "saved.tar")
	e.dockerOK("save", "-o", saved, "mine:v2")
	a, err := image.OpenArchive(saved)
	if err != nil {
		t.Fatal(err)
	}
	if a.Images[0].ID != id || a.Images[0].Layers[1].DiffID != diffIDs[1] || !reflect.DeepEqual(a.Images[0].RepoTags, []string{"docker.io/library/mine:v2"}) {
		t.Errorf("docker save: %+v", a.Images[0])
	}
	a.Close()
	if out := e.dockerOK("rmi", "mine:v2"); !strings.Contains(out, "Untagged: mine:v2") || strings.Contains(out, "Deleted") {
		t.Errorf("docker rmi (untag): %q", out)
	}
	if out := e.dockerOK("rmi", "tool:1.0"); !strings.Contains(out, "Deleted: "+id.String()) {
		t.Errorf("docker rmi (delete): %q", out)
	}
	if _, errOut, code := e.docker("rmi", "tool:1.0"); code != 1 || !strings.Contains(errOut, "No such image: tool:1.0") {
		t.Errorf("docker rmi unknown: %d %q", code, errOut)
	}
	e.dockerOK("load", "-i", saved)
	if out := e.dockerOK("images", "-q", "--no-trunc"); out != id.String()+"\n" {
		t.Errorf("reloaded: %q", out)
	}

	out, errOut, code := e.dockerIn(layer(t, "hello", "world"), "import", "-c", "CMD [\"/hello\"]", "-m", "via docker", "-", "imp:d")
	if code != 0 || !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("docker import: %d %q %q", code, out, errOut)
	}
	if out := e.dockerOK("image", "inspect", "--format", "{{.Comment}} {{json .Config.Cmd}}", "imp:d"); out != "via docker [\"/hello\"]\n" {
		t.Errorf("docker import result: %q", out)
	}
	if _, errOut, code := e.docker("load", "-i", p+".missing"); code != 1 || errOut == "" {
		t.Errorf("docker load of a missing file: %d %q", code, errOut)
	}
	junk := filepath.Join(t.TempDir(), "junk.tar")
	os.WriteFile(junk, []byte("junk"), 0o644)
	if _, errOut, code := e.docker("load", "-i", junk); code != 1 || !strings.Contains(errOut, "invalid image archive") {
		t.Errorf("docker load junk: %d %q", code, errOut)
	}
}

func TestLoadOCI(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed (scripts/install-deps installs it)")
	}
	e := newEnv(t)
	p, _, diffIDs := writeArchive(t, "docker.io/library/tool:1.0")
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	archive := filepath.Join(dir, "oci.tar")
	for _, args := range [][]string{
		{"copy", "--dest-compress", "docker-archive:" + p, "oci:" + layout + ":1.0"},
		{"copy", "docker-archive:" + p, "oci-archive:" + archive + ":docker.io/library/ocitool:2.0"},
	} {
		if out, err := exec.Command("skopeo", args...).CombinedOutput(); err != nil {
			t.Fatalf("skopeo %v: %v\n%s", args, err, out)
		}
	}
	// A layout whose ref name is only a tag loads untagged; a full
	// reference names the image.
	if out := e.ok("load", "-i", layout); !strings.HasPrefix(out, "Loaded image ID: sha256:") {
		t.Errorf("load OCI layout: %q", out)
	}
	if out := e.ok("load", "-i", archive); out != "Loaded image: ocitool:2.0\n" {
		t.Errorf("load OCI archive: %q", out)
	}
	if out := e.ok("image", "inspect", "--format", "{{index .RootFS.Layers 0}} {{index .RootFS.Layers 1}}", "ocitool:2.0"); out != diffIDs[0].String()+" "+diffIDs[1].String()+"\n" {
		t.Errorf("OCI image layers: %q", out)
	}
	// Gzip-compressed archives load too.
	gz := filepath.Join(dir, "image.tar.gz")
	if err := exec.Command("sh", "-c", "gzip -c "+p+" > "+gz).Run(); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("load", "-i", gz); out != "Loaded image: tool:1.0\n" {
		t.Errorf("load gzip: %q", out)
	}
}
