package storetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
)

// testAdoptedFiles: a file offered for adoption becomes the object by
// link (one inode, marked shared) where it can, the bytes are checked, a
// wrong file is refused without a trace, removing the image leaves the
// offered file whole, and where no link can be made (another file system,
// a file with other names) the bytes are copied.
func testAdoptedFiles(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	tmp, err := os.MkdirTemp(filepath.Dir(s.Root()), "adopted-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	size := int(s.InlineThreshold()) + 100000
	offer := func(file string) func(string, int64) *os.File {
		return func(string, int64) *os.File {
			f, err := os.Open(file)
			if err != nil {
				t.Error(err)
				return nil
			}
			return f
		}
	}
	stat := func(p string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	write := func(dir, name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Trusted xattrs and links on this file system: adoption can work.
	probe := write(tmp, "probe", nil)
	canAdopt := unix.Setxattr(probe, cas.XattrShared, []byte("x"), 0) == nil &&
		stat(probe).Dev == stat(s.Root()).Dev

	right := random(size)
	rightFile := write(tmp, "right", right)
	raw := buildTar(t, []file{dir("d"), reg("d/big", right)}, 0)
	info := ingest(t, s, raw, cas.IngestOptions{Files: offer(rightFile), Adopt: true})
	if got := layerTar(t, s, info.DiffID); !bytes.Equal(got, raw) {
		t.Error("the layer tar differs from the one ingested")
	}
	d := digest.FromBytes(right)
	obj, ok := s.ObjectPath(d)
	if !ok {
		t.Fatal("no object file for the adopted content")
	}
	if canAdopt {
		if o, f := stat(obj), stat(rightFile); o.Ino != f.Ino || f.Nlink != 2 {
			t.Errorf("object inode %d, file inode %d with %d links: not adopted", o.Ino, f.Ino, f.Nlink)
		}
		if shared, err := cas.Adopted(rightFile); err != nil || !shared {
			t.Errorf("adopted file not marked shared: %v %v", shared, err)
		}
	}
	img := putImage(t, s, "adopted", info.DiffID)

	// A chmod of the shared inode changes nothing the store serves.
	if err := os.Chmod(rightFile, 0); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Fsck(ctx); err != nil || !r.OK() {
		t.Errorf("fsck after a chmod of the adopted file: %v %v", r.Problems, err)
	}
	if got := layerTar(t, s, info.DiffID); !bytes.Equal(got, raw) {
		t.Error("the layer tar changed with a chmod of the adopted file")
	}

	// A file that does not hold the tar's bytes is refused, unmarked.
	other := write(tmp, "other", random(size))
	before := snap(t, s)
	_, err = s.IngestLayer(ctx, bytes.NewReader(buildTar(t, []file{reg("lie", random(size))}, 0)),
		cas.IngestOptions{Files: offer(other), Adopt: true})
	if !errors.Is(err, cas.ErrDigestMismatch) {
		t.Errorf("wrong file offered for adoption: %v, want ErrDigestMismatch", err)
	}
	if diff := before.diff(snap(t, s)); diff != "" {
		t.Errorf("a refused adoption changed the store:\n%s", diff)
	}
	if st := stat(other); st.Nlink != 1 {
		t.Errorf("refused file has %d links", st.Nlink)
	}
	if shared, _ := cas.Adopted(other); shared {
		t.Error("refused file marked shared")
	}

	// The image goes, the object with it; the offered file stays whole.
	if err := s.DeleteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Object(ctx, d); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("object after its image went: %v", err)
	}
	if got, err := os.ReadFile(rightFile); err != nil || !bytes.Equal(got, right) {
		t.Errorf("the adopted file after the image went: %d bytes, %v", len(got), err)
	}
	if shared, _ := cas.Adopted(rightFile); shared {
		t.Error("file still reported shared after the object went")
	}

	// No link possible: the bytes are copied, the file left alone.
	for _, tc := range []struct{ name, dir string }{
		{"other names", tmp},
		{"another file system", "/dev/shm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.dir); err != nil {
				t.Skipf("no %s", tc.dir)
			}
			dir, err := os.MkdirTemp(tc.dir, "adopt-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			b := random(size)
			p := write(dir, "f", b)
			links := uint64(1)
			if tc.name == "other names" {
				if err := os.Link(p, p+".2"); err != nil {
					t.Fatal(err)
				}
				links = 2
			} else if stat(dir).Dev == stat(s.Root()).Dev {
				t.Skipf("%s is on the store's file system", tc.dir)
			}
			info := ingest(t, s, buildTar(t, []file{reg("f", b)}, 0), cas.IngestOptions{Files: offer(p), Adopt: true})
			obj, ok := s.ObjectPath(digest.FromBytes(b))
			if !ok {
				t.Fatal("no object file")
			}
			if stat(obj).Ino == stat(p).Ino || stat(p).Nlink != links {
				t.Error("a file that cannot be adopted was linked")
			}
			if got, err := os.ReadFile(obj); err != nil || !bytes.Equal(got, b) {
				t.Errorf("copied object: %d bytes, %v", len(got), err)
			}
			if shared, _ := cas.Adopted(p); shared {
				t.Error("a copied file is marked shared")
			}
			_ = info
		})
	}
}
