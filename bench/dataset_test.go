package bench

import (
	"archive/tar"
	"bytes"
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
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/internal/testenv"
)

// tinySpec is a data set small enough to build twice in a test.
func tinySpec() Spec {
	return Spec{SmallFiles: 400, SmallDirs: 8, BigSize: 1 << 20, MidSize: 8192, Changed: 10,
		SourceFiles: 20, Creates: 10, RandomIOs: 10, DiffSmall: 100, DiffLarge: 200}
}

// treeDigest hashes a directory tree: names, types, modes, owners, device
// numbers, link targets and contents, in name order.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		size := fi.Size()
		if fi.IsDir() {
			size = 0 // directory sizes differ between file systems
		}
		fmt.Fprintf(h, "%s %o %d:%d %d %d\n", rel, st.Mode, st.Uid, st.Gid, st.Rdev, size)
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			link, _ := os.Readlink(p)
			io.WriteString(h, link)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestDatasetDeterministicAndShaped(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	testenv.RequireRoot(t, "whiteouts are character devices")
	ctx := context.Background()
	a, err := PrepareDataset(ctx, t.TempDir(), tinySpec(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PrepareDataset(ctx, t.TempDir(), tinySpec(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID {
		t.Errorf("same spec, different ids %s and %s", a.ID, b.ID)
	}
	for i := range a.Layers {
		if da, db := treeDigest(t, a.Layers[i]), treeDigest(t, b.Layers[i]); da != db {
			t.Errorf("layer %s differs between two builds", filepath.Base(a.Layers[i]))
		}
	}
	sa, _ := fileSHA256(a.SourceTar)
	sb, _ := fileSHA256(b.SourceTar)
	if sa != sb {
		t.Error("source tarball differs between two builds")
	}

	// Shape: file counts, sizes and whiteouts as the spec says.
	spec := tinySpec()
	tree, whiteouts := 0, 0
	filepath.WalkDir(filepath.Join(a.Dir, "layers/1-tree"), func(p string, d fs.DirEntry, err error) error {
		if d.Type().IsRegular() {
			tree++
			fi, _ := d.Info()
			if fi.Size() < 1024 || fi.Size() > 8192 {
				t.Errorf("%s: %d bytes, want 1–8 KiB", p, fi.Size())
			}
		}
		return nil
	})
	filepath.WalkDir(filepath.Join(a.Dir, "layers/3-changes"), func(p string, d fs.DirEntry, err error) error {
		if d.Type()&fs.ModeCharDevice != 0 {
			whiteouts++
		}
		return nil
	})
	if tree != spec.SmallFiles || whiteouts != spec.Changed {
		t.Errorf("tree has %d files and %d whiteouts, want %d and %d", tree, whiteouts, spec.SmallFiles, spec.Changed)
	}
	fi, err := os.Stat(filepath.Join(a.Dir, "layers/2-big", a.Big))
	if err != nil || fi.Size() != spec.BigSize {
		t.Errorf("big file: %v, %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "layers/1-tree", a.SmallFile)); err != nil {
		t.Errorf("the small file workloads touch is not in the tree layer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.Dir, "layers/3-changes", a.SmallFile)); err == nil {
		t.Errorf("the small file workloads touch is changed by the change layer")
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Spec)
	}{
		{"no dirs", func(s *Spec) { s.SmallDirs = 0 }},
		{"fewer files than dirs", func(s *Spec) { s.SmallFiles = 4 }},
		{"too many changes", func(s *Spec) { s.Changed = 200 }},
		{"tiny big file", func(s *Spec) { s.BigSize = 10 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tinySpec()
			tc.mutate(&s)
			if _, err := PrepareDataset(context.Background(), t.TempDir(), s, io.Discard); !errors.Is(err, ErrBadSpec) {
				t.Fatalf("got %v, want ErrBadSpec", err)
			}
		})
	}
}

// makeLayers writes three overlayfs layers (top first) exercising what
// MergeLayers must get right: whiteouts, an opaque directory, a directory
// replaced by a file, symlinks, modes and owners.
func makeLayers(t *testing.T) []string {
	t.Helper()
	root := t.TempDir()
	l := []string{filepath.Join(root, "top"), filepath.Join(root, "mid"), filepath.Join(root, "bottom")}
	write := func(layer, p, content string, mode os.FileMode) {
		full := filepath.Join(layer, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	whiteout := func(layer, p string) {
		full := filepath.Join(layer, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := unix.Mknod(full, unix.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
	}
	write(l[2], "a/keep", "keep", 0o644)
	write(l[2], "a/gone", "gone", 0o644)
	write(l[2], "opq/old1", "old", 0o644)
	write(l[2], "opq/sub/old2", "old", 0o644)
	write(l[2], "dir2file/x", "x", 0o644)
	write(l[2], "exec", "#!/bin/sh\n", 0o755)
	os.Symlink("a/keep", filepath.Join(l[2], "link"))
	write(l[1], "a/changed", "v1", 0o600)
	whiteout(l[1], "a/gone")
	write(l[1], "opq/new", "new", 0o644)
	if err := unix.Setxattr(filepath.Join(l[1], "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("no trusted xattrs here: %v", err)
	}
	write(l[1], "dir2file", "now a file", 0o644)
	write(l[0], "a/changed", "v2, longer", 0o640)
	os.Chown(filepath.Join(l[0], "a/changed"), 1000, 1000)
	whiteout(l[0], "link")
	write(l[0], "top-only", "t", 0o444)
	return l
}

// TestMergeLayersMatchesKernelOverlay holds the native copy to what kernel
// overlayfs shows for the same layers.
func TestMergeLayersMatchesKernelOverlay(t *testing.T) {
	testenv.RequireRoot(t, "overlay mounts")
	layers := makeLayers(t)
	merged := filepath.Join(t.TempDir(), "merged")
	if err := MergeLayers(context.Background(), layers, merged); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	upper, work, mnt := filepath.Join(dir, "u"), filepath.Join(dir, "w"), filepath.Join(dir, "m")
	for _, d := range []string{upper, work, mnt} {
		os.Mkdir(d, 0o755)
	}
	if err := (KernelOverlay{}).Mount(context.Background(), layers, upper, work, mnt); err != nil {
		t.Fatal(err)
	}
	defer unmount(mnt)
	if a, b := treeDigest(t, merged), treeDigest(t, mnt); a != b {
		out, _ := exec.Command("diff", "-r", "--no-dereference", merged, mnt).CombinedOutput()
		t.Errorf("merged copy differs from kernel overlayfs:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(merged, "opq/old1")); err == nil {
		t.Error("opaque directory let a lower file through")
	}
}

func TestWriteImageArchive(t *testing.T) {
	testenv.RequireRoot(t, "whiteouts are character devices")
	layers := makeLayers(t)
	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := WriteImageArchive(context.Background(), archive, "fusebox-bench/test:1", layers); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[hdr.Name] = data
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"])
	}
	var config struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(files[manifest[0].Config], &config); err != nil {
		t.Fatal(err)
	}
	if len(manifest[0].Layers) != 3 || len(config.RootFS.DiffIDs) != 3 {
		t.Fatalf("want 3 layers, got %d and %d diff ids", len(manifest[0].Layers), len(config.RootFS.DiffIDs))
	}
	var names []string
	for i, lp := range manifest[0].Layers {
		sum := sha256.Sum256(files[lp])
		if "sha256:"+hex.EncodeToString(sum[:]) != config.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: diff_id does not match its tar", i)
		}
		tr := tar.NewReader(bytes.NewReader(files[lp]))
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			names = append(names, fmt.Sprintf("%d:%s", i, hdr.Name))
		}
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{"1:a/.wh.gone", "1:opq/.wh..wh..opq", "2:.wh.link", "0:exec"} {
		if !strings.Contains(joined, want) {
			t.Errorf("layer tars lack %s: %s", want, joined)
		}
	}
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		if out, err := exec.Command(skopeo, "inspect", "docker-archive:"+archive).CombinedOutput(); err != nil {
			t.Errorf("skopeo rejects the archive: %v: %s", err, out)
		}
	}
	// Same layers, same bytes: image ids must not change between runs.
	again := filepath.Join(t.TempDir(), "again.tar")
	if err := WriteImageArchive(context.Background(), again, "fusebox-bench/test:1", layers); err != nil {
		t.Fatal(err)
	}
	s1, _ := fileSHA256(archive)
	s2, _ := fileSHA256(again)
	if s1 != s2 {
		t.Error("two archives of the same layers differ")
	}
}

// TestNativeRebuildsChangedCopy: a native copy left modified (a run killed
// in the middle of a write workload) is not measured again as if pristine.
func TestNativeRebuildsChangedCopy(t *testing.T) {
	testenv.RequireRoot(t, "whiteouts and bind mounts")
	layers := makeLayers(t)
	cache := t.TempDir()
	ctx := context.Background()
	n := &Native{CacheDir: cache}
	if err := n.Prepare(ctx, layers); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if err := n.Mount(ctx, layers, "", "", mnt); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "a/keep"), []byte("scribbled on"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Unmount(ctx, mnt); err != nil {
		t.Fatal(err)
	}
	again := &Native{CacheDir: cache}
	if err := again.Prepare(ctx, layers); err != nil {
		t.Fatal(err)
	}
	if err := again.Mount(ctx, layers, "", "", mnt); err != nil {
		t.Fatal(err)
	}
	defer again.Unmount(ctx, mnt)
	if data, _ := os.ReadFile(filepath.Join(mnt, "a/keep")); string(data) != "keep" {
		t.Errorf("native copy not rebuilt: a/keep is %q", data)
	}
}
