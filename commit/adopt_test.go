package commit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/commit"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
	"github.com/fusebox/fusebox/testdata"
)

// diskBlocks is the disk the files under dirs take, each inode counted
// once however many names it has: what `du` of all the dirs at once says.
// Unlike statfs's free blocks it does not move with what other processes
// write meanwhile.
func diskBlocks(t testing.TB, dirs ...string) int64 {
	t.Helper()
	seen := map[[2]uint64]bool{}
	var total int64
	for _, dir := range dirs {
		must(t, filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return err
			}
			k := [2]uint64{st.Dev, st.Ino}
			if !seen[k] {
				seen[k] = true
				total += st.Blocks * 512
			}
			return nil
		}))
	}
	return total
}

// stoppable is a container whose mount can be stopped and started again
// over the same upper dir and journal, as the daemon does.
type stoppable struct {
	*ctr
	srcs          []layerfs.Source
	work, journal string
}

func newStoppable(t *testing.T, s *cas.Store, id digest.Digest) *stoppable {
	t.Helper()
	layertest.Skip(t)
	c := &stoppable{ctr: &ctr{store: s, image: id, upper: t.TempDir()}, srcs: lowers(t, s, id), work: t.TempDir()}
	c.journal = filepath.Join(t.TempDir(), "journal")
	c.start(t)
	return c
}

func (c *stoppable) start(t *testing.T) {
	t.Helper()
	c.srv, c.root = layertest.MountT(t, layerfs.MountOptions{Lowers: c.srcs, UpperDir: c.upper, WorkDir: c.work, JournalPath: c.journal})
}

func (c *stoppable) stop(t *testing.T) {
	t.Helper()
	must(t, c.srv.Unmount())
}

func sha(t testing.TB, r io.Reader) digest.Digest {
	t.Helper()
	d, err := digest.FromReader(r)
	must(t, err)
	return d
}

func layerDigest(t testing.TB, s *cas.Store, diffID digest.Digest) digest.Digest {
	t.Helper()
	rc, err := s.LayerTar(context.Background(), diffID)
	must(t, err)
	defer rc.Close()
	return sha(t, rc)
}

// TestCommitAdoptsUpperFile: the commit of a stopped container's new 64 MiB
// file costs the file's disk once (the store links the upper file in as
// its object), and whatever the container does to the file afterwards
// (write, truncate, chmod, hard link, running or restarted) leaves the
// committed image as it was.
func TestCommitAdoptsUpperFile(t *testing.T) {
	const size = 64 << 20
	ctx := context.Background()
	s := openStore(t)
	parent := loadImage(t, s, testdata.Busybox(t))
	c := newStoppable(t, s, parent)
	data := make([]byte, size)
	rand.Read(data)
	must(t, os.WriteFile(c.p("tmp/big"), data, 0o644))
	must(t, os.WriteFile(c.p("tmp/other"), data[:1<<20], 0o644))
	c.stop(t)

	// The daemon mounts a stopped container for its commit.
	c.start(t)
	before := diskBlocks(t, c.upper, s.Root())
	res, err := commit.Commit(ctx, s, commit.Request{
		Parent: parent, Mount: c.mount(), Config: &dockerspec.DockerOCIImageConfig{},
		Repo: "adopted", Tag: "v1", Adopt: true,
	})
	must(t, err)
	grew := diskBlocks(t, c.upper, s.Root()) - before
	t.Logf("a commit of a %d MiB new file grew the disk by %d KiB", size>>20, grew>>10)
	if grew > size/8 {
		t.Errorf("the commit of a %d MiB file took %d MiB more disk: a second copy", size>>20, grew>>20)
	}
	obj, ok := s.ObjectPath(digest.FromBytes(data))
	if !ok {
		t.Fatal("no object file for the committed file")
	}
	var ost, ust unix.Stat_t
	must(t, unix.Stat(obj, &ost))
	must(t, unix.Stat(filepath.Join(c.upper, "tmp/big"), &ust))
	if ost.Ino != ust.Ino {
		t.Fatalf("the object (inode %d) is not the upper file (inode %d)", ost.Ino, ust.Ino)
	}
	layer := layerDigest(t, s, res.Layer.DiffID)
	if layer != res.Layer.DiffID {
		t.Fatalf("layer tar reads back as %s, committed %s", layer, res.Layer.DiffID)
	}
	image := mountRO(t, s, res.ID)
	checkImage := func(when string) {
		t.Helper()
		if got := layerDigest(t, s, res.Layer.DiffID); got != res.Layer.DiffID {
			t.Errorf("%s: the committed layer reads back as %s, was %s", when, got, res.Layer.DiffID)
		}
		f, err := os.Open(obj)
		must(t, err)
		if got := sha(t, f); got != digest.FromBytes(data) {
			t.Errorf("%s: the store's object changed", when)
		}
		f.Close()
		b, err := os.ReadFile(filepath.Join(image, "tmp/big"))
		must(t, err)
		if !bytes.Equal(b, data) {
			t.Errorf("%s: the committed image's file changed", when)
		}
		var st unix.Stat_t
		must(t, unix.Stat(filepath.Join(image, "tmp/big"), &st))
		if st.Mode&07777 != 0o644 {
			t.Errorf("%s: the committed image's file has mode %#o", when, st.Mode&07777)
		}
		if r, err := s.Fsck(ctx); err != nil || !r.OK() {
			t.Errorf("%s: fsck: %v %v", when, r.Problems, err)
		}
	}

	// The same mount, still up (a reader holding the file open), writes.
	reader, err := os.Open(c.p("tmp/big"))
	must(t, err)
	must(t, os.Chmod(c.p("tmp/big"), 0o600)) // metadata only: shared still
	f, err := os.OpenFile(c.p("tmp/big"), os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte("changed after the commit"), 0)
	must(t, err)
	must(t, f.Close())
	reader.Close()
	checkImage("after a write in the same mount")
	got, err := os.ReadFile(c.p("tmp/big"))
	must(t, err)
	if !bytes.HasPrefix(got, []byte("changed after the commit")) || len(got) != size {
		t.Error("the container does not see its own write")
	}
	var st unix.Stat_t
	must(t, unix.Stat(c.p("tmp/big"), &st))
	if st.Mode&07777 != 0o600 {
		t.Errorf("mode after the copy: %#o", st.Mode&07777)
	}

	// A restarted container: truncate and hard link the other file, which
	// the commit adopted too.
	c.stop(t)
	c.start(t)
	otherObj, _ := s.ObjectPath(digest.FromBytes(data[:1<<20]))
	must(t, os.Link(c.p("tmp/other"), c.p("tmp/other-link")))
	must(t, os.Truncate(c.p("tmp/other-link"), 10))
	b, err := os.ReadFile(c.p("tmp/other"))
	must(t, err)
	if len(b) != 10 {
		t.Errorf("the hard link's other name has %d bytes after a truncate, want 10", len(b))
	}
	ob, err := os.ReadFile(otherObj)
	must(t, err)
	if !bytes.Equal(ob, data[:1<<20]) {
		t.Error("a truncate through a hard link changed the store's object")
	}
	must(t, os.WriteFile(c.p("tmp/big"), []byte("rewritten"), 0o644)) // O_TRUNC
	checkImage("after a restart, link, truncate and rewrite")

	// The image goes: the container's files stay.
	must(t, s.DeleteTag(ctx, res.Ref))
	must(t, s.DeleteImage(ctx, res.ID))
	must(t, s.GC(ctx))
	if b, err := os.ReadFile(c.p("tmp/big")); err != nil || string(b) != "rewritten" {
		t.Errorf("the container's file after the image went: %q %v", b, err)
	}
}
