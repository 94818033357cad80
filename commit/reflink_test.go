package commit_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/commit"
	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
	"github.com/fusebox/fusebox/testdata"
)

// xfsDir mounts a fresh XFS file system (reflink on) from a loop image and
// returns its root; it is unmounted in t.Cleanup. It skips without root or
// mkfs.xfs (Debian's xfsprogs).
func xfsDir(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t, "a loop mount")
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		t.Skip("mkfs.xfs not installed (Debian package xfsprogs)")
	}
	img := filepath.Join(t.TempDir(), "xfs.img")
	f, err := os.Create(img)
	must(t, err)
	must(t, f.Truncate(1<<30))
	must(t, f.Close())
	if out, err := exec.Command(mkfs, "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount XFS here: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

func usedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	must(t, unix.Statfs(dir, &st))
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// TestCommitNoSecondCopy: on a file system that shares extents, with the
// store and the container's upper dir on it, committing a new 256 MiB file
// costs no second 256 MiB: the store reflinks the upper file.
func TestCommitNoSecondCopy(t *testing.T) {
	root := xfsDir(t)
	ctx := context.Background()
	img := testdata.Busybox(t)
	s, err := cas.Open(ctx, filepath.Join(root, "store"))
	must(t, err)
	defer s.Close()
	parent := loadImage(t, s, img)
	upper, work := filepath.Join(root, "upper"), filepath.Join(root, "work")
	must(t, os.Mkdir(upper, 0755))
	must(t, os.Mkdir(work, 0700))
	srv, merged := layertest.MountT(t, layerfs.MountOptions{Lowers: lowers(t, s, parent), UpperDir: upper, WorkDir: work})

	const size = 256 << 20
	f, err := os.Create(filepath.Join(merged, "tmp/big.bin"))
	must(t, err)
	_, err = io.CopyN(f, rand.Reader, size)
	must(t, err)
	must(t, f.Close())
	unix.Sync()
	before := usedBytes(t, root)

	res, err := commit.Commit(ctx, s, commit.Request{Parent: parent, Mount: commit.Mount{Merged: merged, Upper: upper, Changes: srv.Journal().Changes()}})
	must(t, err)
	unix.Sync()
	grew := usedBytes(t, root) - before
	t.Logf("commit of a %d MiB file: the file system grew by %.1f MiB", size>>20, float64(grew)/(1<<20))
	if grew > size/8 {
		t.Errorf("the commit took %d MiB more disk for a %d MiB file: a second copy", grew>>20, size>>20)
	}
	if res.Layer.ContentSize != size {
		t.Errorf("layer content %d, want %d", res.Layer.ContentSize, size)
	}
	sameTree(t, "the committed image", tree(t, merged), tree(t, mountRO(t, s, res.ID)))
	rep, err := s.Fsck(ctx)
	must(t, err)
	if !rep.OK() {
		t.Errorf("fsck: %v", rep.Problems)
	}
}
