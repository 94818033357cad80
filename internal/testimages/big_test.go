package testimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
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
	"syscall"
	"testing"

	"github.com/fusebox/fusebox/testdata"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// TestBig checks the benchmarks' image: its archive, the shape of each lower
// dir, and the merged view kernel overlayfs gives of them. The first run
// builds about 2.6 GB, so -short skips it.
func TestBig(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the big image takes minutes and 2.6 GB to build")
	}
	needRoot(t)
	img := testdata.Big(t)
	checkDockerArchive(t, img, "sh")
	if len(img.DiffIDs) != 5 || len(img.LowerDirs) != 5 {
		t.Fatalf("%d layers and %d lower dirs, want 5", len(img.DiffIDs), len(img.LowerDirs))
	}
	if bb := testdata.Busybox(t); img.DiffIDs[0] != bb.DiffIDs[0] {
		t.Errorf("base layer %s differs from busybox's %s; they should be one layer", img.DiffIDs[0], bb.DiffIDs[0])
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		var in skopeoInspect
		if err := json.Unmarshal(skopeo(t, "inspect", "docker-archive:"+img.DockerArchive), &in); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(in.Layers, img.DiffIDs) {
			t.Errorf("skopeo layers %v, want %v", in.Layers, img.DiffIDs)
		}
	}

	t.Run("big files", func(t *testing.T) {
		for _, f := range []struct {
			name string
			size int64
		}{{testdata.BigFile, testdata.BigFileSize}, {testdata.MediumFile, testdata.MediumFileSize}} {
			p := filepath.Join(img.LowerDirs[1], f.name)
			fi, err := os.Stat(p)
			if err != nil || fi.Size() != f.size {
				t.Fatalf("%s: %v, size %d, want %d", f.name, err, fi.Size(), f.size)
			}
			// Incompressible: gzip cannot shrink the first MiB.
			r, _ := os.Open(p)
			var zb bytes.Buffer
			zw := gzip.NewWriter(&zb)
			io.CopyN(zw, r, 1<<20)
			zw.Close()
			r.Close()
			if zb.Len() < 1<<20 {
				t.Errorf("%s: first MiB gzips to %d bytes", f.name, zb.Len())
			}
		}
	})
	t.Run("tree", func(t *testing.T) {
		files, leafDirs := 0, 0
		err := filepath.WalkDir(filepath.Join(img.LowerDirs[2], testdata.BigTree), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && strings.Count(strings.TrimPrefix(p, img.LowerDirs[2]), "/") == 3 {
				leafDirs++
			}
			if d.Type().IsRegular() {
				files++
				fi, err := d.Info()
				if err != nil {
					return err
				}
				if fi.Size() < 1024 || fi.Size() > 8192 {
					t.Errorf("%s: %d bytes, want 1–8 KiB", p, fi.Size())
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if files != testdata.BigTreeFiles || leafDirs != testdata.BigTreeDirs {
			t.Errorf("tree: %d files in %d leaf dirs, want %d in %d", files, leafDirs, testdata.BigTreeFiles, testdata.BigTreeDirs)
		}
	})
	t.Run("changes", func(t *testing.T) {
		for i := range testdata.BigDeleted {
			var st unix.Stat_t
			p := filepath.Join(img.LowerDirs[3], testdata.BigDeletedFile(i))
			if err := unix.Lstat(p, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
				t.Fatalf("%s: %v, mode %o rdev %d; want a 0/0 character device", p, err, st.Mode, st.Rdev)
			}
		}
		for i := range testdata.BigModified {
			p := testdata.BigModifiedFile(i)
			a, err1 := os.ReadFile(filepath.Join(img.LowerDirs[2], p))
			b, err2 := os.ReadFile(filepath.Join(img.LowerDirs[3], p))
			if err1 != nil || err2 != nil || bytes.Equal(a, b) {
				t.Fatalf("%s: %v, %v, unchanged=%v", p, err1, err2, bytes.Equal(a, b))
			}
		}
	})
	t.Run("overlayfs", func(t *testing.T) {
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir="+img.LowerDirOption(), mnt).CombinedOutput(); err != nil {
			t.Skipf("kernel overlayfs not available: %v: %s", err, out)
		}
		defer exec.Command("umount", mnt).Run()
		files := 0
		filepath.WalkDir(filepath.Join(mnt, testdata.BigTree), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files++
			}
			return err
		})
		if want := testdata.BigTreeFiles - testdata.BigDeleted; files != want {
			t.Errorf("merged tree has %d files, want %d", files, want)
		}
		got, _ := os.ReadFile(filepath.Join(mnt, testdata.BigModifiedFile(7)))
		want, _ := os.ReadFile(filepath.Join(img.LowerDirs[3], testdata.BigModifiedFile(7)))
		if len(got) == 0 || !bytes.Equal(got, want) {
			t.Errorf("merged %s is not layer 4's version", testdata.BigModifiedFile(7))
		}
		if _, err := os.Lstat(filepath.Join(mnt, testdata.BigDeletedFile(7))); !os.IsNotExist(err) {
			t.Errorf("deleted %s: %v, want not exist", testdata.BigDeletedFile(7), err)
		}
	})
}

// TestDebian checks the debootstrap image: one layer, bash, Debian 12.
func TestDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: debootstrap takes a minute and needs the network")
	}
	img := testdata.Debian(t)
	checkDockerArchive(t, img, "bash")
	if len(img.DiffIDs) != 1 {
		t.Fatalf("%d layers, want 1", len(img.DiffIDs))
	}
	f, err := os.Open(img.DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	members := map[string]*tar.Header{}
	var version []byte
	outer := tar.NewReader(f)
	for {
		hdr, err := outer.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(hdr.Name, "/layer.tar") {
			continue
		}
		inner := tar.NewReader(outer)
		for {
			h, err := inner.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			members[h.Name] = h
			switch h.Name {
			case "etc/debian_version":
				version, _ = io.ReadAll(inner)
			case "etc/hostname", "etc/resolv.conf":
				if h.Size != 0 {
					t.Errorf("%s has %d bytes; the build host's must not leak into the image", h.Name, h.Size)
				}
			}
		}
	}
	if !strings.HasPrefix(string(version), "12.") {
		t.Errorf("etc/debian_version = %q, want 12.x", version)
	}
	for _, p := range []string{"usr/bin/bash", "usr/bin/apt-get", "etc/passwd", "tmp/", "dev/"} {
		if members[p] == nil {
			t.Errorf("layer has no %s", p)
		}
	}
	if h := members["tmp/"]; h != nil && h.Mode != 0o1777 {
		t.Errorf("tmp/ mode %o, want 1777", h.Mode)
	}
	if members["dev/null"] != nil {
		t.Errorf("layer carries dev/null; device nodes are left to the runtime")
	}
	if id := digest.FromBytes(mustRead(t, img.Config)); id != img.ID {
		t.Errorf("config digest %s, want %s", id, img.ID)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDebianNoMirror: when debootstrap cannot reach its mirror the error says
// so (ErrDebootstrap, on which Debian skips) and the cache keeps nothing.
func TestDebianNoMirror(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("debootstrap not installed")
	}
	t.Setenv(testdata.DebianMirrorEnv, "http://127.0.0.1:9/debian")
	cache := t.TempDir()
	_, err := testdata.BuildDebian(context.Background(), cache)
	if !errors.Is(err, testdata.ErrDebootstrap) {
		t.Fatalf("BuildDebian without a mirror: %v, want ErrDebootstrap", err)
	}
	t.Logf("error: %v", err)
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	left, _ := filepath.Glob(filepath.Join(cache, "*"))
	hidden, _ := filepath.Glob(filepath.Join(cache, ".tmp-*"))
	for _, p := range append(left, hidden...) {
		if !strings.HasSuffix(p, ".lock") {
			t.Errorf("failed build left %s", p)
		}
	}
}

func TestFiles(t *testing.T) {
	needRoot(t)
	for _, n := range []int{0, 1, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			img := testdata.Files(t, n)
			checkDockerArchive(t, img, "sh")
			if img.RepoTag() != fmt.Sprintf("fusebox-files-%d:latest", n) || len(img.LowerDirs) != 2 {
				t.Fatalf("%s with %d lower dirs", img.RepoTag(), len(img.LowerDirs))
			}
			files := 0
			err := filepath.WalkDir(img.LowerDirs[1], func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					files++
				}
				return err
			})
			if err != nil || files != n {
				t.Fatalf("tree layer has %d files (%v), want %d", files, err, n)
			}
			if n > 0 {
				if _, err := os.Stat(filepath.Join(img.LowerDirs[1], testdata.FilesTreeFile(n-1))); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
