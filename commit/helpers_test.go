package commit_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/commit"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
	"github.com/fusebox/fusebox/testdata"
)

// casSource serves one stored layer to layerfs: its file index and its
// object files (or inline bytes). The test's own adapter, so that the
// committed image is mounted from what the store really holds.
type casSource struct {
	s      *cas.Store
	diffID digest.Digest
}

var _ layerfs.Source = casSource{}

// ID names the store too: layerfs caches merged views by source IDs, and
// each test has a store of its own.
func (c casSource) ID() string { return "commit-test-cas:" + c.s.Root() + ":" + c.diffID.String() }

func (c casSource) Entries(ctx context.Context) ([]cas.Entry, error) {
	return c.s.Entries(ctx, c.diffID)
}

func (c casSource) Open(ctx context.Context, e *cas.Entry) (layerfs.Content, error) {
	if p, ok := c.s.ObjectPath(e.Digest); ok {
		f, err := os.Open(p)
		return layerfs.Content{File: f}, err
	}
	b, err := c.s.ReadInline(ctx, e.Digest)
	return layerfs.Content{Data: b}, err
}

func openStore(t testing.TB) *cas.Store {
	t.Helper()
	s, err := cas.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// loadImage puts a test image's layer tars and config into the store and
// returns its ID.
func loadImage(t testing.TB, s *cas.Store, img *testdata.Image) digest.Digest {
	t.Helper()
	ctx := context.Background()
	for i, p := range img.LayerTars {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.IngestLayer(ctx, f, cas.IngestOptions{DiffID: img.DiffIDs[i]})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(img.Config)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.PutBlob(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutImage(ctx, cas.ImageRecord{ID: id, DiffIDs: img.DiffIDs}); err != nil {
		t.Fatal(err)
	}
	return id
}

// lowers are an image's layers as layerfs sources, top first.
func lowers(t testing.TB, s *cas.Store, id digest.Digest) []layerfs.Source {
	t.Helper()
	rec, err := s.Image(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []layerfs.Source
	for i := len(rec.DiffIDs) - 1; i >= 0; i-- {
		out = append(out, casSource{s: s, diffID: rec.DiffIDs[i]})
	}
	return out
}

// ctr is a container's writable mount, made the way the daemon makes one.
type ctr struct {
	srv         *layerfs.Server
	root, upper string
	store       *cas.Store
	image       digest.Digest
}

func (c *ctr) p(rel string) string { return filepath.Join(c.root, rel) }

// mount returns the commit package's view of the container.
func (c *ctr) mount() commit.Mount {
	return commit.Mount{Merged: c.root, Upper: c.upper, Changes: c.srv.Journal().Changes()}
}

func newCtr(t testing.TB, s *cas.Store, id digest.Digest, srcs []layerfs.Source) *ctr {
	t.Helper()
	layertest.Skip(t)
	upper, work := t.TempDir(), t.TempDir()
	srv, root := layertest.MountT(t, layerfs.MountOptions{Lowers: srcs, UpperDir: upper, WorkDir: work})
	return &ctr{srv: srv, root: root, upper: upper, store: s, image: id}
}

func runCtr(t testing.TB, s *cas.Store, id digest.Digest) *ctr {
	t.Helper()
	return newCtr(t, s, id, lowers(t, s, id))
}

// mountRO mounts an image read-only.
func mountRO(t testing.TB, s *cas.Store, id digest.Digest) string {
	t.Helper()
	_, dir := layertest.MountT(t, layerfs.MountOptions{Lowers: lowers(t, s, id)})
	return dir
}

// tree describes every path under root: type, mode, owner, mtime (whole
// seconds, as layers keep it), size, content hash, link target, device,
// xattrs and, for files with several names, the group of names.
func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inos := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("type=%o mode=%o uid=%d gid=%d", st.Mode&unix.S_IFMT, st.Mode&07777, st.Uid, st.Gid)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// Directory times move when an unpacker fills them; the
			// layer keeps them, but tools differ on restoring them.
			desc += fmt.Sprintf(" mtime=%d", st.Mtim.Sec)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += fmt.Sprintf(" size=%d sha=%s", st.Size, hex.EncodeToString(sum[:8]))
			inos[st.Ino] = append(inos[st.Ino], rel)
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + l
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" dev=%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if sz, err := unix.Llistxattr(p, nil); err == nil && sz > 0 {
			buf := make([]byte, sz)
			sz, _ = unix.Llistxattr(p, buf)
			names := strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00")
			sort.Strings(names)
			for _, n := range names {
				if !strings.HasPrefix(n, "user.") {
					continue
				}
				v := make([]byte, 256)
				k, _ := unix.Lgetxattr(p, n, v)
				desc += fmt.Sprintf(" %s=%q", n, v[:max(k, 0)])
			}
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range inos {
		if len(names) > 1 {
			sort.Strings(names)
			for _, n := range names {
				out[n] += " links=" + strings.Join(names, ",")
			}
		}
	}
	return out
}

func sameTree(t testing.TB, what string, want, got map[string]string) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s (%s)", p, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s:\n\twant %s\n\tgot  %s", p, w, g))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s (%s)", p, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%s differs from the container's view:\n%s", what, strings.Join(diffs, "\n"))
	}
}

// applyLayer is a small reference applier: it unpacks a layer tar onto
// dir the way Docker's applier does (".wh.NAME" removes NAME, an opaque
// marker empties the directory of what this layer did not put there,
// hard links link, existing non-directories are replaced), and then sets
// the times of the entries it wrote.
func applyLayer(t testing.TB, dir string, r io.Reader) {
	t.Helper()
	tr := tar.NewReader(r)
	type stamp struct {
		p string
		m time.Time
	}
	var stamps []stamp
	unpacked := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean(hdr.Name)
		p := filepath.Join(dir, name)
		base := filepath.Base(name)
		if base == ".wh..wh..opq" {
			d := filepath.Dir(p)
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				if !unpacked[filepath.Join(d, e.Name())] {
					if err := os.RemoveAll(filepath.Join(d, e.Name())); err != nil {
						t.Fatal(err)
					}
				}
			}
			continue
		}
		if w, ok := strings.CutPrefix(base, ".wh."); ok {
			if err := os.RemoveAll(filepath.Join(filepath.Dir(p), w)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		unpacked[p] = true
		if fi, err := os.Lstat(p); err == nil && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
		}
		mode := uint32(hdr.Mode & 07777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(p, 0700); err != nil && !errors.Is(err, os.ErrExist) {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		case tar.TypeLink:
			if err := os.Link(filepath.Join(dir, filepath.Clean(hdr.Linkname)), p); err != nil {
				t.Fatal(err)
			}
			continue
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			m := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
			if err := unix.Mknod(p, m|0600, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("entry %s: type %c", hdr.Name, hdr.Typeflag)
		}
		if err := os.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeSymlink {
			if err := unix.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range hdr.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if err := unix.Lsetxattr(p, x, []byte(v), 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		stamps = append(stamps, stamp{p, hdr.ModTime})
	}
	for i := len(stamps) - 1; i >= 0; i-- {
		ts := []unix.Timespec{unix.NsecToTimespec(stamps[i].m.UnixNano()), unix.NsecToTimespec(stamps[i].m.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, stamps[i].p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot is the store's whole state: every record and object file.
func snapshot(t testing.TB, s *cas.Store) map[string]string {
	t.Helper()
	recs, err := s.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range recs {
		out["rec:"+k] = string(v)
	}
	filepath.WalkDir(filepath.Join(s.Root(), "objects"), func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			out["obj:"+p] = ""
		}
		return nil
	})
	return out
}
