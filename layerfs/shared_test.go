package layerfs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs/layertest"
)

// TestSharedUpperFileCopiedBeforeWrite: an upper file that the store
// adopted (a second name outside the upper dir, marked cas.XattrShared) is
// copied before a write, a truncate or a hard link changes it, keeps its
// inode number in the mount, and is left shared by metadata changes; a
// marked file with no other name is written in place.
func TestSharedUpperFileCopiedBeforeWrite(t *testing.T) {
	orig := bytes.Repeat([]byte("stored "), 20000)
	for _, tc := range []struct {
		name   string
		do     func(t *testing.T, m rwMount, p string)
		copied bool
		want   []byte // the container's bytes after do
	}{
		{"chmod and chown keep the share", func(t *testing.T, m rwMount, p string) {
			must(t, os.Chmod(m.p(p), 0o600))
			must(t, os.Lchown(m.p(p), 1000, 1000))
		}, false, orig},
		{"write copies", func(t *testing.T, m rwMount, p string) {
			f, err := os.OpenFile(m.p(p), os.O_WRONLY, 0)
			must(t, err)
			_, err = f.WriteAt([]byte("CHANGED"), 0)
			must(t, err)
			must(t, f.Close())
		}, true, append([]byte("CHANGED"), orig[7:]...)},
		{"truncate copies", func(t *testing.T, m rwMount, p string) {
			must(t, os.Truncate(m.p(p), 6))
		}, true, orig[:6]},
		{"O_TRUNC copies", func(t *testing.T, m rwMount, p string) {
			must(t, os.WriteFile(m.p(p), []byte("new"), 0o644))
		}, true, []byte("new")},
		{"a hard link copies, and its names share the copy", func(t *testing.T, m rwMount, p string) {
			must(t, os.Link(m.p(p), m.p(p+"-2")))
			must(t, os.WriteFile(m.p(p+"-2"), []byte("both"), 0o644))
		}, true, []byte("both")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mountRW(t, layertest.Layer{{Path: "d", Type: cas.TypeDir, Mode: 0o755}})
			must(t, os.WriteFile(m.p("d/f"), orig, 0o644))
			upper := filepath.Join(m.upper, "d/f")
			// What cas's adoption does: a second name in the store, marked.
			obj := filepath.Join(t.TempDir(), "object")
			must(t, os.Link(upper, obj))
			must(t, unix.Setxattr(upper, cas.XattrShared, []byte("sha256:test"), 0))
			var before unix.Stat_t
			must(t, unix.Stat(m.p("d/f"), &before))

			tc.do(t, m, "d/f")

			if got, err := os.ReadFile(obj); err != nil || !bytes.Equal(got, orig) {
				t.Fatalf("the store's object changed: %d bytes, %v", len(got), err)
			}
			if got, err := os.ReadFile(m.p("d/f")); err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("the container reads %d bytes (%v), want %d", len(got), err, len(tc.want))
			}
			var ost, ust, after unix.Stat_t
			must(t, unix.Stat(obj, &ost))
			must(t, unix.Stat(upper, &ust))
			must(t, unix.Stat(m.p("d/f"), &after))
			if shared := ost.Ino == ust.Ino; shared == tc.copied {
				t.Errorf("upper file shared with the object: %v, want %v", shared, !tc.copied)
			}
			if after.Ino != before.Ino {
				t.Errorf("inode number in the mount %d, was %d", after.Ino, before.Ino)
			}
			if ok, _ := cas.Adopted(upper); ok == tc.copied {
				t.Errorf("upper file reported shared: %v", ok)
			}
		})
	}

	t.Run("marked alone is written in place", func(t *testing.T) {
		m := mountRW(t, layertest.Layer{{Path: "d", Type: cas.TypeDir, Mode: 0o755}})
		must(t, os.WriteFile(m.p("d/f"), orig, 0o644))
		upper := filepath.Join(m.upper, "d/f")
		must(t, unix.Setxattr(upper, cas.XattrShared, []byte("sha256:gone"), 0))
		var before, after unix.Stat_t
		must(t, unix.Stat(upper, &before))
		must(t, os.WriteFile(m.p("d/f"), []byte("x"), 0o644))
		must(t, unix.Stat(upper, &after))
		if after.Ino != before.Ino {
			t.Error("a file the store no longer shares was copied")
		}
		if _, err := unix.Getxattr(upper, cas.XattrShared, nil); err == nil {
			t.Error("the stale mark stayed")
		}
	})
}
