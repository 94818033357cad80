package testimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/testdata"
)

// The busybox image built from Debian bookworm's busybox-static
// 1:1.35.0-4+deb12u1+b1 has this ID; with another binary the ID differs and
// only the other checks apply.
const (
	knownBusyboxSum = "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6"
	knownBusyboxID  = "sha256:9d92934a63f8ff36aaf0223338f6a2a4ec2fbe539b67ab18f4d6cde58ad27bd7"
)

func needRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "lower dirs carry owners, device whiteouts and trusted.* xattrs")
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (scripts/install-deps installs it)", name)
	}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// dockerArchive is what a docker-archive holds, read with archive/tar alone.
type dockerArchive struct {
	manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	repositories map[string]map[string]string
	config       []byte
	layerSums    map[string]digest.Digest // member name → sha256 of its bytes
}

func readDockerArchive(t *testing.T, p string) *dockerArchive {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := &dockerArchive{layerSums: map[string]digest.Digest{}}
	members := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		// Hash every member (the layers may be big); keep the small ones.
		var small bytes.Buffer
		r := io.Reader(tr)
		if hdr.Size < 1<<20 {
			r = io.TeeReader(tr, &small)
		}
		d, err := digest.SHA256.FromReader(r)
		if err != nil {
			t.Fatal(err)
		}
		a.layerSums[hdr.Name] = d
		if hdr.Size < 1<<20 {
			members[hdr.Name] = small.Bytes()
		}
	}
	if err := json.Unmarshal(members["manifest.json"], &a.manifest); err != nil || len(a.manifest) != 1 {
		t.Fatalf("manifest.json: %v (%d images)", err, len(a.manifest))
	}
	if err := json.Unmarshal(members["repositories"], &a.repositories); err != nil {
		t.Fatalf("repositories: %v", err)
	}
	a.config = members[a.manifest[0].Config]
	if a.config == nil {
		t.Fatalf("config %s missing from archive", a.manifest[0].Config)
	}
	return a
}

type configJSON struct {
	Architecture string
	OS           string
	Config       struct{ Env, Cmd []string }
	History      []struct {
		CreatedBy  string `json:"created_by"`
		EmptyLayer bool   `json:"empty_layer"`
	}
	RootFS struct {
		Type    string
		DiffIDs []digest.Digest `json:"diff_ids"`
	}
}

// checkDockerArchive checks the archive against itself and against img: the
// config's digest is the ID, each layer tar's sha256 is its diff_id, one
// non-empty history entry per layer.
func checkDockerArchive(t *testing.T, img *testdata.Image, cmd string) *configJSON {
	t.Helper()
	return checkDockerArchiveAt(t, img, img.DockerArchive, cmd)
}

func checkDockerArchiveAt(t *testing.T, img *testdata.Image, path, cmd string) *configJSON {
	t.Helper()
	a := readDockerArchive(t, path)
	m := a.manifest[0]
	if id := digest.FromBytes(a.config); id != img.ID || !strings.HasSuffix(m.Config, id.Encoded()+".json") && m.Config != "blobs/sha256/"+id.Encoded() {
		t.Errorf("config %s has digest %s, want image ID %s", m.Config, id, img.ID)
	}
	if !slices.Equal(m.RepoTags, []string{img.RepoTag()}) {
		t.Errorf("RepoTags = %q, want [%q]", m.RepoTags, img.RepoTag())
	}
	if top := a.repositories[img.Name][img.Tag]; top+"/layer.tar" != m.Layers[len(m.Layers)-1] && "blobs/sha256/"+top != m.Layers[len(m.Layers)-1] {
		t.Errorf("repositories points at %q, top layer is %q", top, m.Layers[len(m.Layers)-1])
	}
	var cfg configJSON
	if err := json.Unmarshal(a.config, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) || !slices.Equal(cfg.RootFS.DiffIDs, img.DiffIDs) {
		t.Fatalf("diff_ids %v, manifest layers %v, image %v", cfg.RootFS.DiffIDs, m.Layers, img.DiffIDs)
	}
	for i, l := range m.Layers {
		if got := a.layerSums[l]; got != cfg.RootFS.DiffIDs[i] {
			t.Errorf("layer %d (%s): sha256 %s, diff_id %s", i, l, got, cfg.RootFS.DiffIDs[i])
		}
	}
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(m.Layers) || len(cfg.History) != len(m.Layers)+1 {
		t.Errorf("history has %d entries, %d with layers; want %d and %d", len(cfg.History), nonEmpty, len(m.Layers)+1, len(m.Layers))
	}
	if !slices.Equal(cfg.Config.Cmd, []string{cmd}) || cfg.OS != "linux" || cfg.RootFS.Type != "layers" {
		t.Errorf("config: Cmd %q os %q rootfs type %q", cfg.Config.Cmd, cfg.OS, cfg.RootFS.Type)
	}
	return &cfg
}

type skopeoInspect struct {
	Digest string
	Layers []digest.Digest
	Env    []string
}

func skopeo(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("skopeo", append([]string{"--insecure-policy"}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("skopeo %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("skopeo %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestBusyboxDockerArchive(t *testing.T) {
	img := testdata.Busybox(t)
	checkDockerArchiveAt(t, img, img.DockerSave25, "sh")
	cfg := checkDockerArchive(t, img, "sh")
	if len(img.DiffIDs) < 3 {
		t.Errorf("%d layers, want at least 3", len(img.DiffIDs))
	}
	if len(cfg.Config.Env) != 1 || !strings.HasPrefix(cfg.Config.Env[0], "PATH=") {
		t.Errorf("Env = %q, want PATH only", cfg.Config.Env)
	}
	for i, p := range img.LayerTars {
		if got := digest.Digest("sha256:" + sha256File(t, p)); got != img.DiffIDs[i] {
			t.Errorf("layer tar %s: %s, want %s", p, got, img.DiffIDs[i])
		}
	}
}

func TestBusyboxSkopeo(t *testing.T) {
	needTool(t, "skopeo")
	img := testdata.Busybox(t)
	tests := []struct {
		name, ref string
		layers    []digest.Digest
	}{
		{"docker-archive", "docker-archive:" + img.DockerArchive, img.DiffIDs},
		{"docker-save-25", "docker-archive:" + img.DockerSave25, img.DiffIDs},
		{"docker-save-25-as-oci", "oci-archive:" + img.DockerSave25 + ":latest", img.DiffIDs},
		{"oci", "oci:" + img.OCILayout + ":latest", img.LayerDigests},
		{"oci-archive", "oci-archive:" + img.OCIArchive + ":latest", img.LayerDigests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in skopeoInspect
			if err := json.Unmarshal(skopeo(t, "inspect", tt.ref), &in); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(in.Layers, tt.layers) {
				t.Errorf("layers %v, want %v", in.Layers, tt.layers)
			}
			cfg := skopeo(t, "inspect", "--config", "--raw", tt.ref)
			if d := digest.FromBytes(cfg); d != img.ID {
				t.Errorf("config digest %s, want image ID %s", d, img.ID)
			}
		})
	}
	t.Run("oci-manifest", func(t *testing.T) {
		raw := skopeo(t, "inspect", "--raw", "oci:"+img.OCILayout+":latest")
		if d := digest.FromBytes(raw); d != img.ManifestDigest {
			t.Errorf("manifest digest %s, want %s", d, img.ManifestDigest)
		}
		// Every compressed blob is its digest, and decompresses to its diff_id.
		for i, d := range img.LayerDigests {
			p := filepath.Join(img.OCILayout, "blobs", "sha256", d.Encoded())
			if got := "sha256:" + sha256File(t, p); got != d.String() {
				t.Errorf("blob %s hashes to %s", d, got)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			diffID, err := digest.SHA256.FromReader(zr)
			f.Close()
			if err != nil || diffID != img.DiffIDs[i] {
				t.Errorf("layer %d decompresses to %s (%v), want diff_id %s", i, diffID, err, img.DiffIDs[i])
			}
		}
	})
}

// tarNames lists a layer tar's members as "name type [linkname]".
func tarNames(t *testing.T, p string) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[hdr.Name]; dup {
			t.Errorf("%s: duplicate entry %s", p, hdr.Name)
		}
		out[hdr.Name] = hdr
	}
}

func TestBusyboxLayerContents(t *testing.T) {
	img := testdata.Busybox(t)
	base := tarNames(t, img.LayerTars[0])
	out, err := exec.Command(testdata.BusyboxBinary, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		hdr := base["bin/"+a]
		if a == "[" {
			continue // the first name in order carries the bytes
		}
		if hdr == nil {
			t.Errorf("applet %s missing from bin/", a)
		} else if hdr.Typeflag != tar.TypeLink || hdr.Linkname != "bin/[" {
			t.Errorf("bin/%s: type %c link %q, want a hard link to bin/[", a, hdr.Typeflag, hdr.Linkname)
		}
	}
	for _, tt := range []struct {
		layer int
		name  string
		typ   byte
		mode  int64
	}{
		{0, "bin/[", tar.TypeReg, 0o755},
		{0, "tmp/", tar.TypeDir, 0o1777},
		{0, "root/", tar.TypeDir, 0o700},
		{0, "etc/hostname", tar.TypeReg, 0o644},
		{0, testdata.BusyboxIndex, tar.TypeReg, 0o644},
		{1, "srv/data/a.txt", tar.TypeLink, 0o644},
		{1, "srv/data/link-to-a", tar.TypeSymlink, 0o777},
		{1, "usr/local/bin/hi", tar.TypeSymlink, 0o777},
		{2, "srv/.wh.remove-me.txt", tar.TypeReg, 0o600},
		{2, "srv/data/.wh.nested", tar.TypeReg, 0o600},
		{2, "srv/replace/.wh..wh..opq", tar.TypeReg, 0o600},
		{2, "srv/replace/new.txt", tar.TypeLink, 0o644},
	} {
		hdr := tarNames(t, img.LayerTars[tt.layer])[tt.name]
		if hdr == nil {
			t.Errorf("layer %d: no %s", tt.layer, tt.name)
			continue
		}
		if hdr.Typeflag != tt.typ || hdr.Mode != tt.mode || !hdr.ModTime.Equal(hdr.ModTime.Truncate(1e9)) {
			t.Errorf("layer %d %s: type %c mode %o, want %c %o", tt.layer, tt.name, hdr.Typeflag, hdr.Mode, tt.typ, tt.mode)
		}
	}
}

// listTree describes every path under root: type, permissions, owner, size,
// link target, content hash, and which paths are hard links of each other.
func listTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%s %o %d:%d", fi.Mode().Type(), st.Mode&0o7777, st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			desc += fmt.Sprintf(" %d %s", fi.Size(), sha256File(t, p)[:16])
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					desc += " =" + first
				} else {
					inodes[st.Ino] = rel
				}
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(t *testing.T, wantName string, want map[string]string, gotName string, got map[string]string) {
	t.Helper()
	n := 0
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range []map[string]string{want, got} {
			for k := range m {
				if !seen[k] && !yield(k) {
					return
				}
				seen[k] = true
			}
		}
	}) {
		if want[p] != got[p] {
			if n++; n <= 20 {
				t.Errorf("%s: %s has %q, %s has %q", p, wantName, want[p], gotName, got[p])
			}
		}
	}
}

// TestBusyboxViews checks that four independent ways of seeing the image
// agree: the merged rootfs the builder writes, kernel overlayfs and
// fuse-overlayfs over the lower dirs, and umoci unpacking the OCI layout
// (which applies the tar whiteouts itself).
func TestBusyboxViews(t *testing.T) {
	needRoot(t)
	img := testdata.Busybox(t)
	rootfs := t.TempDir()
	testdata.BusyboxRootfs(t, rootfs)
	want := listTree(t, rootfs)

	for p, ok := range map[string]bool{
		testdata.BusyboxDeleted:                  false,
		testdata.BusyboxDeletedDir:               false,
		testdata.BusyboxOpaque + "/old1.txt":     false,
		testdata.BusyboxOpaque + "/sub":          false,
		testdata.BusyboxOpaque + "/new.txt":      true,
		testdata.BusyboxOpaque + "/new-link.txt": true,
		"srv/data/a.txt":                         true,
		"srv/latest":                             true,
	} {
		if _, found := want[p]; found != ok {
			t.Errorf("rootfs: %s present=%v, want %v", p, found, ok)
		}
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "srv/keep.txt")); err != nil || string(b) != "keep: layer 3 version\n" {
		t.Errorf("srv/keep.txt = %q, %v; want layer 3's", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "srv/latest")); err != nil || string(b) != "new: written by layer 3\n" {
		t.Errorf("srv/latest reads %q, %v", b, err)
	}

	t.Run("overlayfs", func(t *testing.T) {
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir="+img.LowerDirOption(), mnt).CombinedOutput(); err != nil {
			t.Skipf("kernel overlayfs not available: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount: %v: %s", err, out)
			}
		})
		got := listTree(t, mnt)
		// Kernel overlayfs shows the root of the mount with the top layer's
		// metadata, the rootfs its own; only the paths below are compared.
		diffTrees(t, "rootfs", want, "overlayfs", got)
	})
	t.Run("fuse-overlayfs", func(t *testing.T) {
		needTool(t, "fuse-overlayfs")
		if _, err := os.Stat("/dev/fuse"); err != nil {
			t.Skip("no /dev/fuse")
		}
		mnt := t.TempDir()
		if out, err := exec.Command("fuse-overlayfs", "-o", "lowerdir="+img.LowerDirOption(), mnt).CombinedOutput(); err != nil {
			t.Fatalf("fuse-overlayfs: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount: %v: %s", err, out)
			}
		})
		diffTrees(t, "rootfs", want, "fuse-overlayfs", listTree(t, mnt))
	})
	t.Run("umoci", func(t *testing.T) {
		needTool(t, "umoci")
		layout := filepath.Join(t.TempDir(), "oci")
		if out, err := exec.Command("cp", "-a", img.OCILayout, layout).CombinedOutput(); err != nil {
			t.Fatalf("copy layout: %v: %s", err, out)
		}
		bundle := filepath.Join(t.TempDir(), "bundle")
		if out, err := exec.Command("umoci", "unpack", "--image", layout+":latest", bundle).CombinedOutput(); err != nil {
			t.Fatalf("umoci unpack: %v: %s", err, out)
		}
		diffTrees(t, "rootfs", want, "umoci", listTree(t, filepath.Join(bundle, "rootfs")))
	})
}

// TestBusyboxRootfsRuns runs the image's shell in a chroot of the rootfs.
func TestBusyboxRootfsRuns(t *testing.T) {
	needRoot(t)
	rootfs := t.TempDir()
	testdata.BusyboxRootfs(t, rootfs)
	out, err := exec.Command("chroot", rootfs, "/bin/sh", "-c",
		"id user && cat /srv/keep.txt && hi && ls /srv/replace && grep -c . /var/www/index.html").CombinedOutput()
	if err != nil {
		t.Fatalf("chroot sh: %v: %s", err, out)
	}
	want := "uid=1000(user) gid=1000(user) groups=1000(user)\nkeep: layer 3 version\nhello from the busybox test image\nnew-link.txt\nnew.txt\n1\n"
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

// TestBusyboxDeterministic builds the image in two fresh caches at once and
// expects identical bytes, and the known ID for the known binary.
func TestBusyboxDeterministic(t *testing.T) {
	ctx := context.Background()
	var imgs [2]*testdata.Image
	var errs [2]error
	var wg sync.WaitGroup
	for i := range imgs {
		wg.Go(func() { imgs[i], errs[i] = testdata.BuildBusybox(ctx, t.TempDir()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := imgs[0], imgs[1]
	if a.ID != b.ID || a.ManifestDigest != b.ManifestDigest || !slices.Equal(a.DiffIDs, b.DiffIDs) {
		t.Fatalf("two builds differ: %s %s vs %s %s", a.ID, a.ManifestDigest, b.ID, b.ManifestDigest)
	}
	for _, p := range [][2]string{{a.DockerArchive, b.DockerArchive}, {a.OCIArchive, b.OCIArchive}, {a.DockerSave25, b.DockerSave25}} {
		if x, y := sha256File(t, p[0]), sha256File(t, p[1]); x != y {
			t.Errorf("%s and %s differ", p[0], p[1])
		}
	}
	if needRootOK() {
		for i := range a.LowerDirs {
			diffTrees(t, "build 1", listTree(t, a.LowerDirs[i]), "build 2", listTree(t, b.LowerDirs[i]))
		}
	}
	if sha256File(t, testdata.BusyboxBinary) == knownBusyboxSum && a.ID != knownBusyboxID {
		t.Errorf("image ID %s, want %s for busybox %s", a.ID, knownBusyboxID, knownBusyboxSum[:12])
	}
}

func needRootOK() bool { return os.Geteuid() == 0 }

// TestCacheConcurrentAndStale: builders racing on one cache agree and leave
// one build; a build missing its image.json (a crash) is rebuilt.
func TestCacheConcurrentAndStale(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	const n = 4
	ids := make([]digest.Digest, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			img, err := testdata.BuildBusybox(ctx, cache)
			if err == nil {
				ids[i] = img.ID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("builder %d: %v, id %s vs %s", i, errs[i], ids[i], ids[0])
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(cache, "*"))
	var builds []string
	for _, d := range dirs {
		if !strings.HasSuffix(d, ".lock") {
			builds = append(builds, filepath.Base(d))
		}
	}
	if hidden, _ := filepath.Glob(filepath.Join(cache, ".tmp-*")); len(builds) != 1 || len(hidden) != 0 {
		t.Fatalf("cache holds %v and temporaries %v, want one build", builds, hidden)
	}
	// A build under an older key is pruned by the next build.
	stale := filepath.Join(cache, "busybox-0000000000000000")
	if err := os.MkdirAll(filepath.Join(stale, "lower"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale+".lock", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	img, _ := testdata.BuildBusybox(ctx, cache)
	if err := os.Remove(filepath.Join(img.Dir, "image.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img.DockerArchive, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := testdata.BuildBusybox(ctx, cache)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if again.ID != img.ID {
		t.Fatalf("rebuild gave %s", again.ID)
	}
	checkDockerArchive(t, again, "sh")
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale build %s: %v, want it pruned", stale, err)
	}
}
