package cas_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/cas/storetest"
	"github.com/fusebox/fusebox/internal/testenv"
)

func newStore(opts ...cas.Option) func(t *testing.T) *cas.Store {
	return func(t *testing.T) *cas.Store {
		s, err := cas.Open(context.Background(), t.TempDir(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestStore(t *testing.T) { storetest.Run(t, newStore()) }

// Nothing inline: every non-empty file goes through an object file.
func TestStoreNoInline(t *testing.T) { storetest.Run(t, newStore(cas.WithInlineThreshold(0))) }

// Reference counts spread over many small transactions, as for layers of
// more files than one Badger transaction holds.
func TestStoreSmallRefBatches(t *testing.T) { storetest.Run(t, newStore(cas.WithRefBatch(2))) }

// TestStoreOnXFS runs the suite on a file system that shares extents, so
// that the reflink paths of IngestOptions.Files run for real.
func TestStoreOnXFS(t *testing.T) {
	testenv.RequireRoot(t, "a loop mount")
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		t.Skip("mkfs.xfs not installed (Debian package xfsprogs)")
	}
	img := filepath.Join(t.TempDir(), "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount XFS here: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v\n%s", err, out)
		}
	})
	storetest.Run(t, func(t *testing.T) *cas.Store {
		root, err := os.MkdirTemp(dir, "store-")
		if err != nil {
			t.Fatal(err)
		}
		s, err := cas.Open(context.Background(), filepath.Join(root, "s"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); os.RemoveAll(root) })
		return s
	})
}
