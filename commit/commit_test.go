package commit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/commit"
	"github.com/fusebox/fusebox/image"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/testdata"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// scenarios are the changes the issue names, each made in a fresh
// container of the busybox image.
var scenarios = []struct {
	name string
	do   func(t *testing.T, c *ctr)
	diff string // what `docker diff` prints, when the test pins it
}{
	{"hello", func(t *testing.T, c *ctr) {
		must(t, os.WriteFile(c.p("tmp/hello.txt"), []byte("hello world\n"), 0644))
	}, "C /tmp\nA /tmp/hello.txt\n"},
	{"delete-lower-file", func(t *testing.T, c *ctr) {
		must(t, os.Remove(c.p(testdata.BusyboxIndex)))
	}, "C /var\nC /var/www\nD /var/www/index.html\n"},
	{"delete-lower-dir", func(t *testing.T, c *ctr) {
		must(t, os.RemoveAll(c.p("srv/data")))
	}, "C /srv\nD /srv/data\n"},
	{"replace-lower-dir", func(t *testing.T, c *ctr) {
		must(t, os.RemoveAll(c.p("srv/data")))
		must(t, os.Mkdir(c.p("srv/data"), 0750))
		must(t, os.WriteFile(c.p("srv/data/fresh.txt"), []byte("fresh"), 0644))
		c.upperHas(t, "srv/data", "trusted.overlay.opaque")
	}, "C /srv\nC /srv/data\nD /srv/data/a-hardlink.txt\nD /srv/data/a.txt\nD /srv/data/b.txt\nA /srv/data/fresh.txt\nD /srv/data/link-to-a\n"},
	{"rename-lower-dir", func(t *testing.T, c *ctr) {
		must(t, os.Rename(c.p("srv/data"), c.p("srv/moved")))
		must(t, os.WriteFile(c.p("srv/moved/b.txt"), []byte("rewritten after the move"), 0644))
		c.upperHas(t, "srv/moved", "trusted.overlay.redirect")
	}, "C /srv\nD /srv/data\nA /srv/moved\nA /srv/moved/a-hardlink.txt\nA /srv/moved/a.txt\nA /srv/moved/b.txt\nA /srv/moved/link-to-a\n"},
	{"chmod-chown-lower-file", func(t *testing.T, c *ctr) {
		must(t, os.Chmod(c.p(testdata.BusyboxIndex), 0600))
		must(t, os.Lchown(c.p("srv/keep.txt"), 1000, 1000))
		c.upperHas(t, testdata.BusyboxIndex, "trusted.overlay.metacopy")
		c.upperHas(t, "srv/keep.txt", "trusted.overlay.metacopy")
	}, "C /srv\nC /srv/keep.txt\nC /var\nC /var/www\nC /var/www/index.html\n"},
	{"hard-links", func(t *testing.T, c *ctr) {
		must(t, os.WriteFile(c.p("tmp/a"), bytes.Repeat([]byte("L"), 10000), 0644))
		must(t, os.Link(c.p("tmp/a"), c.p("tmp/b")))
		must(t, os.Link(c.p("tmp/a"), c.p("root/c")))
		// A lower file with two names, changed: both names are copied
		// up as one file.
		must(t, os.Chmod(c.p("srv/data/a.txt"), 0640))
		// A link to a lower file: the journal names only the new name,
		// the layer must carry both.
		must(t, os.Link(c.p("etc/passwd"), c.p("tmp/pw")))
	}, ""},
	{"symlinks-devices-xattrs", func(t *testing.T, c *ctr) {
		must(t, os.Symlink("../etc/passwd", c.p("tmp/rel-link")))
		must(t, os.Symlink("/nowhere", c.p("tmp/dangling")))
		must(t, unix.Mknod(c.p("tmp/null"), unix.S_IFCHR|0666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mkfifo(c.p("tmp/fifo"), 0640))
		must(t, os.WriteFile(c.p("tmp/x"), []byte("with xattr"), 0644))
		must(t, unix.Lsetxattr(c.p("tmp/x"), "user.note", []byte("kept"), 0))
		must(t, unix.Lsetxattr(c.p("etc/motd"), "user.lower", []byte("on a lower file"), 0))
		must(t, os.Symlink("hello", c.p("usr/local/bin/hi2")))
	}, ""},
	{"file-over-dir-and-dir-over-file", func(t *testing.T, c *ctr) {
		must(t, os.RemoveAll(c.p("home/user")))
		must(t, os.WriteFile(c.p("home/user"), []byte("now a file"), 0600))
		must(t, os.Remove(c.p("etc/hostname")))
		must(t, os.MkdirAll(c.p("etc/hostname/deeper"), 0755))
		must(t, os.Truncate(c.p("etc/passwd"), 5))
	}, ""},
}

func TestCommitScenarios(t *testing.T) {
	img := testdata.Busybox(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t)
			parent := loadImage(t, s, img)
			c := runCtr(t, s, parent)
			sc.do(t, c)
			if sc.diff != "" {
				d, err := commit.Diff(context.Background(), c.mount())
				must(t, err)
				if got := commit.Format(d); got != sc.diff {
					t.Errorf("diff:\n%swant:\n%s", got, sc.diff)
				}
			}
			res, err := commit.Commit(ctx, s, commit.Request{
				Parent: parent, Mount: c.mount(),
				Config:  &dockerspec.DockerOCIImageConfig{},
				Comment: "scenario " + sc.name, Repo: "committed", Tag: sc.name,
			})
			must(t, err)
			want := tree(t, c.root)

			// The new image, mounted from the store, shows what the
			// container saw.
			sameTree(t, "the committed image", want, tree(t, mountRO(t, s, res.ID)))

			// The layer applied by a reference applier onto the parent's
			// root file system gives the same tree.
			dir := t.TempDir()
			testdata.BusyboxRootfs(t, dir)
			lt, err := s.LayerTar(ctx, res.Layer.DiffID)
			must(t, err)
			applyLayer(t, dir, lt)
			lt.Close()
			sameTree(t, "the layer applied to the parent's rootfs", want, tree(t, dir))

			// Same changes, same bytes.
			var a, b bytes.Buffer
			must(t, commit.WriteLayer(ctx, &a, c.mount()))
			must(t, commit.WriteLayer(ctx, &b, c.mount()))
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Error("two writes of the same changes differ")
			}
			if got := digest.FromBytes(a.Bytes()); got != res.Layer.DiffID {
				t.Errorf("layer written again is %s, stored %s", got, res.Layer.DiffID)
			}
		})
	}
}

// TestWalkthrough is the walkthrough's commit: /tmp/hello.txt, diff, commit
// with a message, tag, a 12 B layer in history, and the new image reads the
// file.
func TestWalkthrough(t *testing.T) {
	ctx := context.Background()
	img := testdata.Busybox(t)
	s := openStore(t)
	parent := loadImage(t, s, img)
	c := runCtr(t, s, parent)
	must(t, os.WriteFile(c.p("tmp/hello.txt"), []byte("hello world\n"), 0644))

	ch, err := commit.Changes(c.srv.Journal().Changes())
	must(t, err)
	api, _ := json.Marshal(commit.APIChanges(ch))
	if want := `[{"Kind":0,"Path":"/tmp"},{"Kind":1,"Path":"/tmp/hello.txt"}]`; string(api) != want {
		t.Errorf("API changes %s, want %s", api, want)
	}

	res, err := commit.Commit(ctx, s, commit.Request{
		Parent: parent, Mount: c.mount(),
		Config:        &dockerspec.DockerOCIImageConfig{},
		ConfigChanges: []string{"ENV GREETING=hello"},
		Comment:       "added hello.txt", Author: "Jane <jane@example.com>",
		Repo: "mybox",
	})
	must(t, err)
	if err := res.ID.Validate(); err != nil || res.ID.Algorithm() != digest.SHA256 {
		t.Fatalf("id %q: %v", res.ID, err)
	}
	if res.Ref != "docker.io/library/mybox:latest" {
		t.Errorf("ref %q", res.Ref)
	}
	if id, err := s.Tag(ctx, "docker.io/library/mybox:latest"); err != nil || id != res.ID {
		t.Errorf("tag points at %s (%v), want %s", id, err, res.ID)
	}
	li, err := s.Layer(ctx, res.Layer.DiffID)
	must(t, err)
	if li.ContentSize != 12 {
		t.Errorf("layer content size %d, want 12 (history's SIZE)", li.ContentSize)
	}
	rec, err := s.Image(ctx, res.ID)
	must(t, err)
	if rec.Parent != parent {
		t.Errorf("parent %s, want %s", rec.Parent, parent)
	}
	raw, err := s.Blob(ctx, res.ID)
	must(t, err)
	cfg, err := image.ParseConfig(raw)
	must(t, err)
	pcfg, _ := os.ReadFile(img.Config)
	pc, _ := image.ParseConfig(pcfg)
	if n := len(cfg.RootFS.DiffIDs); n != len(pc.RootFS.DiffIDs)+1 || cfg.RootFS.DiffIDs[n-1] != res.Layer.DiffID {
		t.Errorf("diff_ids %v", cfg.RootFS.DiffIDs)
	}
	h := cfg.History[len(cfg.History)-1]
	if len(cfg.History) != len(pc.History)+1 || h.Comment != "added hello.txt" || h.Author != "Jane <jane@example.com>" || h.EmptyLayer || h.Created == nil {
		t.Errorf("history entry %+v", h)
	}
	if cfg.Author != "Jane <jane@example.com>" || len(cfg.Config.Env) != 1 || cfg.Config.Env[0] != "GREETING=hello" {
		t.Errorf("config %+v", cfg.Config)
	}
	got, err := os.ReadFile(filepath.Join(mountRO(t, s, res.ID), "tmp/hello.txt"))
	if err != nil || string(got) != "hello world\n" {
		t.Errorf("new image's /tmp/hello.txt: %q, %v", got, err)
	}
}

// TestConfigCarriedOver: the container's config becomes the image's, the
// --change lines apply on top, created_by is the container's command.
func TestConfigCarriedOver(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	parent := loadImage(t, s, testdata.Busybox(t))
	c := runCtr(t, s, parent)
	ccfg := &dockerspec.DockerOCIImageConfig{}
	ccfg.Cmd = []string{"sh", "-c", "echo hi > /tmp/x"}
	ccfg.Env = []string{"PATH=/bin", "A=1"}
	ccfg.WorkingDir = "/srv"
	ccfg.User = "1000"
	ccfg.Labels = map[string]string{"from": "container"}
	ccfg.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	ccfg.StopSignal = "SIGINT"
	ccfg.Volumes = map[string]struct{}{"/data": {}}
	ccfg.Entrypoint = []string{"/bin/env"}
	res, err := commit.Commit(ctx, s, commit.Request{
		Parent: parent, Mount: c.mount(), Config: ccfg,
		ConfigChanges: []string{`CMD ["httpd", "-f"]`, "EXPOSE 8080", "LABEL version=2", "WORKDIR /var/www", "USER user"},
	})
	must(t, err)
	raw, _ := s.Blob(ctx, res.ID)
	cfg, err := image.ParseConfig(raw)
	must(t, err)
	got, _ := json.Marshal(cfg.Config)
	want := `{"User":"user","ExposedPorts":{"80/tcp":{},"8080/tcp":{}},"Env":["PATH=/bin","A=1"],"Entrypoint":["/bin/env"],"Cmd":["httpd","-f"],"Volumes":{"/data":{}},"WorkingDir":"/var/www","Labels":{"from":"container","version":"2"},"StopSignal":"SIGINT"}`
	if string(got) != want {
		t.Errorf("config\n%s\nwant\n%s", got, want)
	}
	if h := cfg.History[len(cfg.History)-1]; h.CreatedBy != "sh -c echo hi > /tmp/x" {
		t.Errorf("created_by %q", h.CreatedBy)
	}
	// Nothing changed: a new image all the same, its history entry an
	// empty layer and no diff_id added, as Docker does.
	if !cfg.History[len(cfg.History)-1].EmptyLayer || res.Layer.DiffID != commit.EmptyLayer {
		t.Errorf("empty commit: history %+v, layer %s", cfg.History[len(cfg.History)-1], res.Layer.DiffID)
	}
	rec, _ := s.Image(ctx, res.ID)
	prec, _ := s.Image(ctx, parent)
	if len(rec.DiffIDs) != len(prec.DiffIDs) || res.ID == parent {
		t.Errorf("empty commit: %d layers (parent %d), id %s", len(rec.DiffIDs), len(prec.DiffIDs), res.ID)
	}
	if _, err := s.Layer(ctx, commit.EmptyLayer); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("the empty layer is stored: %v", err)
	}
}

// TestThreeGenerations commits a container of a committed image, three
// times over.
func TestThreeGenerations(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	id := loadImage(t, s, testdata.Busybox(t))
	ops := []func(t *testing.T, c *ctr){
		func(t *testing.T, c *ctr) {
			must(t, os.MkdirAll(c.p("app/conf"), 0755))
			must(t, os.WriteFile(c.p("app/conf/one"), []byte("1"), 0644))
			must(t, os.Remove(c.p("srv/keep.txt")))
		},
		func(t *testing.T, c *ctr) {
			must(t, os.WriteFile(c.p("app/conf/one"), []byte("one, rewritten"), 0600))
			must(t, os.Rename(c.p("app/conf"), c.p("app/etc")))
			must(t, os.WriteFile(c.p("srv/keep.txt"), []byte("back again"), 0644))
		},
		func(t *testing.T, c *ctr) {
			must(t, os.RemoveAll(c.p("app")))
			must(t, os.Mkdir(c.p("app"), 0700))
			must(t, os.Chmod(c.p("srv/keep.txt"), 0400))
		},
	}
	for gen, op := range ops {
		c := runCtr(t, s, id)
		op(t, c)
		res, err := commit.Commit(ctx, s, commit.Request{Parent: id, Mount: c.mount(), Comment: "generation"})
		must(t, err)
		sameTree(t, "generation", tree(t, c.root), tree(t, mountRO(t, s, res.ID)))
		rec, err := s.Image(ctx, res.ID)
		must(t, err)
		if rec.Parent != id || len(rec.DiffIDs) != 4+gen {
			t.Errorf("generation %d: parent %s (want %s), %d layers", gen+1, rec.Parent, id, len(rec.DiffIDs))
		}
		id = res.ID
	}
}

// TestBadInput: a bad --change line, an invalid tag, a broken change list:
// clear errors and a store left exactly as it was.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	parent := loadImage(t, s, testdata.Busybox(t))
	c := runCtr(t, s, parent)
	must(t, os.WriteFile(c.p("tmp/f"), bytes.Repeat([]byte("x"), 100000), 0644))
	for _, tc := range []struct {
		name string
		req  commit.Request
		want error
	}{
		{"bad change", commit.Request{ConfigChanges: []string{"RUN rm -rf /"}}, image.ErrBadChange},
		{"bad change syntax", commit.Request{ConfigChanges: []string{"ENV"}}, image.ErrBadChange},
		{"uppercase repo", commit.Request{Repo: "MyBox"}, image.ErrInvalidReference},
		{"bad tag", commit.Request{Repo: "mybox", Tag: "v1!"}, image.ErrInvalidReference},
		{"tag without repo", commit.Request{Tag: "v1"}, image.ErrInvalidReference},
		{"unknown parent", commit.Request{Parent: digest.FromString("nothing")}, cas.ErrNotFound},
		{"unknown change kind", commit.Request{Mount: commit.Mount{Changes: append(c.srv.Journal().Changes(), layerfsChange("/tmp/g", 7))}}, commit.ErrBadChangeList},
		{"vanished path", commit.Request{Mount: commit.Mount{Changes: append(c.srv.Journal().Changes(), layerfsChange("/tmp/never", 1))}}, commit.ErrMountChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, s)
			req := tc.req
			if req.Parent == "" {
				req.Parent = parent
			}
			if req.Mount.Changes == nil {
				req.Mount.Changes = c.srv.Journal().Changes()
			}
			req.Mount.Merged, req.Mount.Upper = c.root, c.upper
			_, err := commit.Commit(ctx, s, req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			t.Logf("error: %v", err)
			after := snapshot(t, s)
			if len(before) != len(after) {
				t.Errorf("store has %d records and objects, had %d", len(after), len(before))
			}
			for k, v := range before {
				if after[k] != v {
					t.Errorf("store changed at %q", k)
				}
			}
		})
	}
}

func layerfsChange(p string, k uint8) layerfs.Change {
	return layerfs.Change{Path: p, Kind: layerfs.ChangeKind(k)}
}

// TestIndependentUnpack saves a committed image with the image package,
// converts it with skopeo to an OCI layout and unpacks it with umoci, which
// applies the whiteouts itself: the root file system it makes is the
// container's view.
func TestIndependentUnpack(t *testing.T) {
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package %s)", tool, tool)
		}
	}
	ctx := context.Background()
	s := openStore(t)
	parent := loadImage(t, s, testdata.Busybox(t))
	c := runCtr(t, s, parent)
	// Every kind of change at once, on paths apart from each other.
	must(t, os.WriteFile(c.p("tmp/hello.txt"), []byte("hello world\n"), 0644))
	must(t, os.Remove(c.p(testdata.BusyboxIndex)))
	must(t, os.RemoveAll(c.p("srv/replace")))
	must(t, os.MkdirAll(c.p("srv/replace/again"), 0755))
	must(t, os.Rename(c.p("srv/data"), c.p("srv/moved")))
	must(t, os.Chmod(c.p("srv/keep.txt"), 0600))
	must(t, os.Lchown(c.p("etc/motd"), 1000, 1000))
	must(t, os.WriteFile(c.p("root/a"), []byte("linked"), 0644))
	must(t, os.Link(c.p("root/a"), c.p("root/b")))
	must(t, os.Symlink("../etc/passwd", c.p("root/pw")))
	must(t, unix.Mkfifo(c.p("root/fifo"), 0600))
	must(t, unix.Mknod(c.p("root/null"), unix.S_IFCHR|0666, int(unix.Mkdev(1, 3))))
	must(t, unix.Lsetxattr(c.p("root/a"), "user.k", []byte("v"), 0))
	must(t, os.RemoveAll(c.p("home/user")))
	must(t, os.WriteFile(c.p("home/user"), []byte("a file now"), 0644))
	res, err := commit.Commit(ctx, s, commit.Request{Parent: parent, Mount: c.mount(), Repo: "unpack-me"})
	must(t, err)

	raw, err := s.Blob(ctx, res.ID)
	must(t, err)
	rec, err := s.Image(ctx, res.ID)
	must(t, err)
	si := image.SaveImage{Config: raw, RepoTags: []string{res.Ref}}
	for _, d := range rec.DiffIDs {
		li, err := s.Layer(ctx, d)
		must(t, err)
		si.Layers = append(si.Layers, image.SaveLayer{DiffID: d, Size: li.Size, Open: func() (io.ReadCloser, error) { return s.LayerTar(ctx, d) }})
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "saved.tar")
	f, err := os.Create(archive)
	must(t, err)
	must(t, image.SaveArchive(ctx, f, []image.SaveImage{si}))
	must(t, f.Close())
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("skopeo", "inspect", "docker-archive:"+archive)
	layout := filepath.Join(dir, "oci")
	run("skopeo", "copy", "docker-archive:"+archive, "oci:"+layout+":committed")
	bundle := filepath.Join(dir, "bundle")
	run("umoci", "unpack", "--image", layout+":committed", bundle)
	sameTree(t, "umoci's unpack", tree(t, c.root), tree(t, filepath.Join(bundle, "rootfs")))
}

// upperHas checks that the upper dir holds rel with the overlayfs xattr
// name, so that a scenario exercises the format it means to.
func (c *ctr) upperHas(t *testing.T, rel, name string) {
	t.Helper()
	if _, err := unix.Lgetxattr(filepath.Join(c.upper, rel), name, nil); err != nil {
		t.Fatalf("upper %s has no %s: %v", rel, name, err)
	}
}
