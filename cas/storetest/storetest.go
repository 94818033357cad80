// Package storetest is the conformance suite every cas.Store
// configuration must pass: round trips of real tars, deduplication,
// reference counts and garbage collection, refusal of bad layers without a
// trace, crash leftovers, fsck, and concurrent ingests. Each check runs as
// its own subtest on a fresh store.
package storetest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/cas"
)

// Run runs every check, each on a store from newStore (a fresh root per
// call; newStore registers its own cleanup).
func Run(t *testing.T, newStore func(t *testing.T) *cas.Store) {
	checks := []struct {
		name string
		fn   func(t *testing.T, s *cas.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyLayer", testEmptyLayer},
		{"IngestExisting", testIngestExisting},
		{"Dedup", testDedup},
		{"RefcountGC", testRefcountGC},
		{"BadInput", testBadInput},
		{"CancelAnywhere", testCancelAnywhere},
		{"Leases", testLeases},
		{"CrashLeftovers", testCrashLeftovers},
		{"Fsck", testFsck},
		{"ConcurrentIngest", testConcurrentIngest},
		{"ConcurrentDelete", testConcurrentDelete},
		{"Images", testImages},
		{"Tags", testTags},
		{"Blobs", testBlobs},
		{"Buckets", testBuckets},
		{"DiskUsage", testDiskUsage},
		{"OfferedFiles", testOfferedFiles},
		{"AdoptedFiles", testAdoptedFiles},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

func ingest(t testing.TB, s *cas.Store, layer []byte, opts cas.IngestOptions) cas.LayerInfo {
	t.Helper()
	info, err := s.IngestLayer(context.Background(), bytes.NewReader(layer), opts)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return info
}

func layerTar(t testing.TB, s *cas.Store, d digest.Digest) []byte {
	t.Helper()
	rc, err := s.LayerTar(context.Background(), d)
	if err != nil {
		t.Fatalf("layer tar %s: %v", d, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read layer tar %s: %v", d, err)
	}
	return b
}

// putImage stores an image made of layers under a made-up config.
func putImage(t testing.TB, s *cas.Store, name string, layers ...digest.Digest) digest.Digest {
	t.Helper()
	ctx := context.Background()
	id, err := s.PutBlob(ctx, []byte(`{"name":"`+name+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutImage(ctx, cas.ImageRecord{ID: id, DiffIDs: layers, Created: epoch}); err != nil {
		t.Fatalf("put image %s: %v", name, err)
	}
	return id
}

// objectFiles lists the object files under the store root.
func objectFiles(t testing.TB, s *cas.Store) []string {
	t.Helper()
	var out []string
	root := filepath.Join(s.Root(), "objects")
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// snapshot is everything a store holds: every Badger record and every
// object and temp file.
type snapshot struct {
	records map[string][]byte
	files   []string
}

func snap(t testing.TB, s *cas.Store) snapshot {
	t.Helper()
	recs, err := s.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	files := objectFiles(t, s)
	tmp, err := os.ReadDir(filepath.Join(s.Root(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range tmp {
		files = append(files, "tmp/"+de.Name())
	}
	return snapshot{records: recs, files: files}
}

// diff describes how b differs from a; empty when they are the same.
func (a snapshot) diff(b snapshot) string {
	var out []string
	for k, v := range a.records {
		if w, ok := b.records[k]; !ok {
			out = append(out, fmt.Sprintf("record %q removed", k))
		} else if !bytes.Equal(v, w) {
			out = append(out, fmt.Sprintf("record %q changed", k))
		}
	}
	for k := range b.records {
		if _, ok := a.records[k]; !ok {
			out = append(out, fmt.Sprintf("record %q added", k))
		}
	}
	if !slices.Equal(a.files, b.files) {
		out = append(out, fmt.Sprintf("files %v became %v", a.files, b.files))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// everyKind is a layer with every entry type, PAX records, xattrs, long
// names in PAX and GNU form, whiteouts and an opaque directory.
func everyKind(big []byte) []file {
	small := []byte("hello, layer\n")
	long := "long/" + strings.Repeat("d", 120) + "/" + strings.Repeat("f", 110)
	gnuLong := "gnu/" + strings.Repeat("g", 150)
	xattr := reg("etc/caps", []byte("#!/bin/true\n"))
	xattr.hdr.Format = tar.FormatPAX
	xattr.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.comment":        "a note",
		"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x30\x00\x00",
	}
	nano := reg("etc/nano", small)
	nano.hdr.Format = tar.FormatPAX
	nano.hdr.ModTime = epoch.Add(123456789 * time.Nanosecond)
	owned := reg("home/user/.profile", []byte("export PS1='$ '\n"))
	owned.hdr.Uid, owned.hdr.Gid, owned.hdr.Uname, owned.hdr.Gname = 1000, 1000, "user", "user"
	owned.hdr.Mode = 0o4755
	gnu := reg(gnuLong, small)
	gnu.hdr.Format = tar.FormatGNU
	return []file{
		dir("./"),
		dir("etc/"),
		reg("etc/small", small),
		reg("etc/big", big),
		reg("etc/empty", nil),
		xattr,
		nano,
		symlink("etc/link", "big"),
		symlink("etc/abs", "/etc/passwd"),
		hardlink("etc/hard", "etc/big"),
		{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: epoch}},
		{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Devmajor: 8, Devminor: 0, ModTime: epoch}},
		{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600, ModTime: epoch}},
		dir("home/"), dir("home/user/"), owned,
		dir("long/"), reg(long, big[:5000]),
		dir("gnu/"), gnu,
		reg("etc/.wh.gone", nil),
		dir("var/"), reg("var/.wh..wh..opq", nil),
	}
}

func testRoundTrip(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	big := random(100 << 10)
	raw := buildTar(t, everyKind(big), 10240)
	for _, c := range []compression{plain, gz, zst} {
		t.Run(string(c), func(t *testing.T) {
			stream := compress(t, c, raw)
			var progress int64
			info := ingest(t, s, stream, cas.IngestOptions{
				Digest:   digest.FromBytes(stream),
				DiffID:   digest.FromBytes(raw),
				Progress: func(n int64) { progress = n },
			})
			if info.DiffID != digest.FromBytes(raw) {
				t.Errorf("diff_id %s, want %s", info.DiffID, digest.FromBytes(raw))
			}
			if info.Digest != digest.FromBytes(stream) || info.CompressedSize != int64(len(stream)) {
				t.Errorf("stream digest %s size %d, want %s %d", info.Digest, info.CompressedSize, digest.FromBytes(stream), len(stream))
			}
			if progress != int64(len(stream)) {
				t.Errorf("last progress report %d, want %d", progress, len(stream))
			}
			if info.Size != int64(len(raw)) {
				t.Errorf("size %d, want %d", info.Size, len(raw))
			}
			got := layerTar(t, s, info.DiffID)
			if !bytes.Equal(got, raw) {
				t.Fatalf("rebuilt tar differs: %d bytes (sha %s), want %d bytes (sha %s)", len(got), digest.FromBytes(got), len(raw), info.DiffID)
			}
		})
	}
	diffID := digest.FromBytes(raw)
	es, err := s.Entries(ctx, diffID)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]cas.Entry{}
	var order []string
	for _, e := range es {
		key := e.Path
		if e.Type == cas.TypeOpaque {
			key += " (opaque)"
		}
		byPath[key] = e
		order = append(order, key)
	}
	wantOrder := []string{".", "etc", "etc/small", "etc/big", "etc/empty", "etc/caps", "etc/nano", "etc/link",
		"etc/abs", "etc/hard", "dev/null", "dev/sda", "run/fifo", "home", "home/user", "home/user/.profile",
		"long", "long/" + strings.Repeat("d", 120) + "/" + strings.Repeat("f", 110), "gnu", "gnu/" + strings.Repeat("g", 150),
		"etc/gone", "var", "var (opaque)"}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("entries in order %q, want %q", order, wantOrder)
	}
	checks := []struct {
		path string
		ok   func(e cas.Entry) bool
		want string
	}{
		{".", func(e cas.Entry) bool { return e.Type == cas.TypeDir && e.Mode == 0o755 }, "root dir 0755"},
		{"etc/big", func(e cas.Entry) bool {
			return e.Type == cas.TypeRegular && e.Size == int64(len(big)) && e.Digest == digest.FromBytes(big) && !e.Inline
		}, "regular in an object file"},
		{"etc/small", func(e cas.Entry) bool { return e.Inline == (s.InlineThreshold() >= 13) && e.Size == 13 }, "small regular, inline when the threshold allows"},
		{"etc/empty", func(e cas.Entry) bool { return e.Type == cas.TypeRegular && e.Size == 0 }, "empty regular"},
		{"etc/caps", func(e cas.Entry) bool {
			return string(e.Xattrs["user.comment"]) == "a note" && len(e.Xattrs["security.capability"]) == 8 && len(e.Xattrs) == 2
		}, "two xattrs"},
		{"etc/nano", func(e cas.Entry) bool { return e.ModTime.Equal(epoch.Add(123456789)) }, "nanosecond mtime"},
		{"etc/link", func(e cas.Entry) bool { return e.Type == cas.TypeSymlink && e.Linkname == "big" }, "symlink to big"},
		{"etc/abs", func(e cas.Entry) bool { return e.Type == cas.TypeSymlink && e.Linkname == "/etc/passwd" }, "absolute symlink"},
		{"etc/hard", func(e cas.Entry) bool { return e.Type == cas.TypeHardlink && e.Linkname == "etc/big" }, "hardlink to etc/big"},
		{"dev/null", func(e cas.Entry) bool { return e.Type == cas.TypeChar && e.Devmajor == 1 && e.Devminor == 3 }, "char 1,3"},
		{"dev/sda", func(e cas.Entry) bool { return e.Type == cas.TypeBlock && e.Devmajor == 8 }, "block 8,0"},
		{"run/fifo", func(e cas.Entry) bool { return e.Type == cas.TypeFifo && e.Mode == 0o600 }, "fifo 0600"},
		{"home/user/.profile", func(e cas.Entry) bool { return e.UID == 1000 && e.GID == 1000 && e.Mode == 0o4755 }, "1000:1000 setuid"},
		{"etc/gone", func(e cas.Entry) bool { return e.Type == cas.TypeWhiteout }, "whiteout"},
		{"var (opaque)", func(e cas.Entry) bool { return e.Type == cas.TypeOpaque && e.Path == "var" }, "opaque var"},
	}
	for _, c := range checks {
		e, ok := byPath[c.path]
		if !ok || !c.ok(e) {
			t.Errorf("entry %s: got %+v, want %s", c.path, e, c.want)
		}
	}
	// Contents read back, by path and by descriptor.
	for _, p := range []string{"etc/big", "etc/small", "etc/empty"} {
		e := byPath[p]
		rc, err := s.OpenContent(ctx, e.Digest)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if digest.FromBytes(b) != e.Digest {
			t.Errorf("content of %s does not hash to its digest", p)
		}
	}
	if p, ok := s.ObjectPath(byPath["etc/big"].Digest); !ok {
		t.Error("no object path for etc/big")
	} else if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, big) {
		t.Errorf("object file %s: %v", p, err)
	}
	if _, ok := s.ObjectPath(byPath["etc/small"].Digest); ok == (s.InlineThreshold() >= 13) {
		t.Errorf("object path for etc/small: %v with inline threshold %d", ok, s.InlineThreshold())
	}
	if s.InlineThreshold() >= 13 {
		if b, err := s.ReadInline(ctx, byPath["etc/small"].Digest); err != nil || string(b) != "hello, layer\n" {
			t.Errorf("read inline: %q, %v", b, err)
		}
	}
	if _, err := s.ReadInline(ctx, byPath["etc/big"].Digest); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("read inline of an object file: %v, want ErrNotFound", err)
	}
	if _, err := s.LayerTar(ctx, digest.FromString("nope")); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("layer tar of an unknown layer: %v, want ErrNotFound", err)
	}
}

// testEmptyLayer ingests the 1024 zero bytes of an empty tar, the layer
// Dockerfile instructions without file changes leave in many images.
func testEmptyLayer(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	empty := make([]byte, 1024)
	const want = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
	info := ingest(t, s, empty, cas.IngestOptions{DiffID: want})
	if info.Files != 0 || info.Size != 1024 {
		t.Errorf("empty layer: %+v", info)
	}
	if es, err := s.Entries(ctx, want); err != nil || len(es) != 0 {
		t.Errorf("entries of the empty layer: %v %v", es, err)
	}
	if got := layerTar(t, s, want); !bytes.Equal(got, empty) {
		t.Errorf("empty layer rebuilt as %d bytes", len(got))
	}
	img := putImage(t, s, "empty layers", want, want)
	if err := s.DeleteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(ctx, want); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("empty layer after its image went: %v", err)
	}
}

func testIngestExisting(t *testing.T, s *cas.Store) {
	raw := buildTar(t, []file{reg("a", random(10000))}, 0)
	first := ingest(t, s, raw, cas.IngestOptions{})
	putImage(t, s, "x", first.DiffID)
	before := snap(t, s)
	again := ingest(t, s, compress(t, gz, raw), cas.IngestOptions{})
	if !again.Existed || first.Existed || again.DiffID != first.DiffID || again.Refs != 1 {
		t.Errorf("second ingest: %+v (first %+v), want Existed with 1 ref", again, first)
	}
	if d := before.diff(snap(t, s)); d != "" {
		t.Errorf("ingesting an existing layer changed the store:\n%s", d)
	}
}

func testDedup(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	shared := random(64 << 10)
	l1 := ingest(t, s, buildTar(t, []file{reg("bin/tool", shared), reg("one", random(8000))}, 0), cas.IngestOptions{})
	l2 := ingest(t, s, buildTar(t, []file{reg("usr/bin/tool-copy", shared), reg("two", random(8000))}, 0), cas.IngestOptions{})
	putImage(t, s, "a", l1.DiffID, l2.DiffID)
	files := objectFiles(t, s)
	if len(files) != 3 {
		t.Errorf("object files %v, want 3 (the shared file once)", files)
	}
	o, err := s.Object(ctx, digest.FromBytes(shared))
	if err != nil || o.Refs != 2 {
		t.Errorf("shared object: %+v, %v; want 2 refs", o, err)
	}
}

func testRefcountGC(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	shared, onlyA, onlyC := random(50000), random(50001), random(50002)
	l1 := ingest(t, s, buildTar(t, []file{reg("a", onlyA), reg("s", shared)}, 0), cas.IngestOptions{})
	l2 := ingest(t, s, buildTar(t, []file{reg("b", random(50003))}, 0), cas.IngestOptions{})
	l3 := ingest(t, s, buildTar(t, []file{reg("c", onlyC), reg("s2", shared)}, 0), cas.IngestOptions{})
	imgA := putImage(t, s, "A", l1.DiffID, l2.DiffID)
	imgB := putImage(t, s, "B", l2.DiffID, l3.DiffID)
	if li, _ := s.Layer(ctx, l2.DiffID); li.Refs != 2 {
		t.Errorf("shared layer refs %d, want 2", li.Refs)
	}
	if err := s.DeleteImage(ctx, imgA); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(ctx, l1.DiffID); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("layer only A used: %v, want ErrNotFound", err)
	}
	if li, err := s.Layer(ctx, l2.DiffID); err != nil || li.Refs != 1 {
		t.Errorf("shared layer after deleting A: %+v %v, want 1 ref", li, err)
	}
	if _, ok := s.ObjectPath(digest.FromBytes(onlyA)); ok {
		t.Error("content only A used is still stored")
	}
	if p, ok := s.ObjectPath(digest.FromBytes(shared)); !ok {
		t.Error("content shared with B's layer is gone")
	} else if _, err := os.Stat(p); err != nil {
		t.Errorf("shared content file: %v", err)
	}
	if n := len(objectFiles(t, s)); n != 3 {
		t.Errorf("%d object files, want 3 (b, c, shared)", n)
	}
	if _, err := s.Blob(ctx, imgA); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("config blob of a deleted image: %v", err)
	}
	if err := s.DeleteImage(ctx, imgB); err != nil {
		t.Fatal(err)
	}
	if files := objectFiles(t, s); len(files) != 0 {
		t.Errorf("object files left after deleting every image: %v", files)
	}
	recs, _ := s.Records(ctx)
	for k := range recs {
		t.Errorf("record left after deleting every image: %q", k)
	}
	if err := s.DeleteImage(ctx, imgB); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("deleting twice: %v, want ErrNotFound", err)
	}
}

// badInputs are layers the store must refuse, each with the sentinel error
// it must return. Every one starts with a big file so that an object is
// written before the problem shows.
func badInputs(t testing.TB) []struct {
	name  string
	layer []byte
	opts  cas.IngestOptions
	want  error
} {
	pre := []file{reg("first", random(20000)), reg("kept", keptContent)}
	bad := func(fs ...file) []byte { return buildTar(t, append(slices.Clone(pre), fs...), 0) }
	good := bad(reg("ok", []byte("fine")))
	gzGood := compress(t, gz, good)
	unsupported := reg("weird", nil)
	unsupported.hdr.Typeflag = 'Z'
	return []struct {
		name  string
		layer []byte
		opts  cas.IngestOptions
		want  error
	}{
		{"wrong stream digest", gzGood, cas.IngestOptions{Digest: digest.FromString("x")}, cas.ErrDigestMismatch},
		{"wrong diff_id", gzGood, cas.IngestOptions{DiffID: digest.FromString("x")}, cas.ErrDigestMismatch},
		{"truncated tar", good[:len(good)-2048-512], cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"truncated in content", good[:1024+10000], cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"truncated gzip", gzGood[:len(gzGood)/2], cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"corrupt gzip", append(slices.Clone(gzGood[:20]), random(5000)...), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"not a tar", random(5000), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"dot-dot name", bad(reg("../escape", []byte("x"))), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"dot-dot inside name", bad(reg("a/../../escape", []byte("x"))), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"absolute name", bad(reg("/etc/passwd", []byte("x"))), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"entry below a symlink", bad(symlink("lnk", "/etc"), reg("lnk/passwd", []byte("x"))), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"hardlink to nothing", bad(hardlink("h", "missing")), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"hardlink to a later entry", bad(hardlink("h", "later"), reg("later", []byte("x"))), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"hardlink out of the layer", bad(hardlink("h", "../../etc/shadow")), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"hardlink to absolute path", bad(hardlink("h", "/etc/shadow")), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"symlink climbing out", bad(dir("a/"), symlink("a/up", "../../etc")), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"file over earlier entries", bad(reg("p/q", []byte("1")), reg("p", []byte("2"))), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"duplicate entry", bad(reg("dup", []byte("1")), reg("dup", []byte("2"))), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"duplicate after cleaning", bad(reg("d/x", []byte("1")), reg("d//./x", []byte("2"))), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"whiteout and file", bad(reg(".wh.f", nil), reg("f", []byte("2"))), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"unsupported type", bad(unsupported), cas.IngestOptions{}, cas.ErrInvalidLayer},
		{"too large", good, cas.IngestOptions{MaxSize: 15000}, cas.ErrTooLarge},
		{"gzip bomb", compress(t, gz, buildTar(t, []file{reg("zeros", make([]byte, 4<<20))}, 0)), cas.IngestOptions{MaxSize: 1 << 20}, cas.ErrTooLarge},
	}
}

// keptContent is in a layer the store holds before the bad inputs, so a
// failed ingest must not remove it.
var keptContent = random(30000)

func testBadInput(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	kept := ingest(t, s, buildTar(t, []file{reg("kept", keptContent)}, 0), cas.IngestOptions{})
	putImage(t, s, "kept", kept.DiffID)
	for _, c := range badInputs(t) {
		t.Run(c.name, func(t *testing.T) {
			before := snap(t, s)
			_, err := s.IngestLayer(ctx, bytes.NewReader(c.layer), c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || msg != strings.ToLower(msg[:1])+msg[1:] {
				t.Errorf("error %q is not one lowercase line", msg)
			}
			if d := before.diff(snap(t, s)); d != "" {
				t.Errorf("store changed:\n%s", d)
			}
		})
	}
	if got := layerTar(t, s, kept.DiffID); digest.FromBytes(got) != kept.DiffID {
		t.Error("the kept layer no longer rebuilds")
	}
}

// countdown is a context that turns cancelled at its n-th Err check, so a
// test can stop an operation at each point where it looks, one after the
// other, without timing.
type countdown struct {
	context.Context
	left int
	done chan struct{}
}

func newCountdown(n int) *countdown {
	return &countdown{Context: context.Background(), left: n, done: make(chan struct{})}
}

func (c *countdown) Done() <-chan struct{} { return c.done }

func (c *countdown) Err() error {
	if c.left--; c.left < 0 {
		if c.left == -1 {
			close(c.done)
		}
		return context.Canceled
	}
	return nil
}

// testCancelAnywhere cancels an ingest at each of its context checks in
// turn (a pull cancelled halfway) and requires every failed ingest to leave
// the store exactly as it was, including after the metadata commit began.
// The layer shares an object with a kept one, so counts that existed
// before are in play too.
func testCancelAnywhere(t *testing.T, s *cas.Store) {
	shared := random(9000)
	kept := ingest(t, s, buildTar(t, []file{reg("shared", shared), reg("note", []byte("kept\n"))}, 0), cas.IngestOptions{})
	putImage(t, s, "kept", kept.DiffID)
	layer := buildTar(t, []file{dir("d"), reg("d/shared", shared), reg("d/big", random(20000)), reg("d/a", []byte("a\n")), reg("d/b", []byte("b\n")), reg("note", []byte("kept\n"))}, 0)
	before := snap(t, s)
	for n := 0; ; n++ {
		if n > 10000 {
			t.Fatal("the ingest never got through 10000 context checks")
		}
		lease := s.NewLease()
		ctx := newCountdown(n)
		info, err := s.IngestLayer(ctx, bytes.NewReader(layer), cas.IngestOptions{Lease: lease})
		if rerr := lease.Release(context.Background()); rerr != nil {
			t.Fatalf("release after check %d: %v", n, rerr)
		}
		if err == nil {
			if n == 0 {
				t.Fatal("the ingest never checks its context")
			}
			if _, err := s.Layer(context.Background(), info.DiffID); !errors.Is(err, cas.ErrNotFound) {
				t.Errorf("the finished layer outlived its lease: %v", err)
			}
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled at check %d: %v, want context.Canceled", n, err)
		}
		if d := before.diff(snap(t, s)); d != "" {
			t.Fatalf("cancelled at check %d, the store changed:\n%s", n, d)
		}
	}
	if d := before.diff(snap(t, s)); d != "" {
		t.Errorf("after the lease ended, the store changed:\n%s", d)
	}
}

func testLeases(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	lease := s.NewLease()
	held := ingest(t, s, buildTar(t, []file{reg("held", random(9000))}, 0), cas.IngestOptions{Lease: lease})
	loose := ingest(t, s, buildTar(t, []file{reg("loose", random(9000))}, 0), cas.IngestOptions{})
	if err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(ctx, held.DiffID); err != nil {
		t.Errorf("leased layer collected: %v", err)
	}
	if _, err := s.Layer(ctx, loose.DiffID); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("unreferenced layer without a lease survived GC: %v", err)
	}
	img := putImage(t, s, "leased", held.DiffID)
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if li, err := s.Layer(ctx, held.DiffID); err != nil || li.Refs != 1 {
		t.Errorf("layer of an image after lease release: %+v %v", li, err)
	}
	// A lease released before PutImage lets the layer go.
	lease2 := s.NewLease()
	gone := ingest(t, s, buildTar(t, []file{reg("gone", random(9000))}, 0), cas.IngestOptions{Lease: lease2})
	if err := lease2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(ctx, gone.DiffID); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("layer after its lease ended: %v, want ErrNotFound", err)
	}
	if err := s.PutImage(ctx, cas.ImageRecord{ID: digest.FromString("late"), DiffIDs: []digest.Digest{gone.DiffID}}); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("put image of a collected layer: %v, want ErrNotFound", err)
	}
	if err := s.DeleteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	if files := objectFiles(t, s); len(files) != 0 {
		t.Errorf("object files left: %v", files)
	}
}

func testCrashLeftovers(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	content := random(20000)
	info := ingest(t, s, buildTar(t, []file{reg("f", content)}, 0), cas.IngestOptions{})
	putImage(t, s, "survivor", info.DiffID)
	lost := ingest(t, s, buildTar(t, []file{reg("lost", random(20000))}, 0), cas.IngestOptions{})
	root := s.Root()
	before := snap(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What a crash leaves: a half-written temp file, an object renamed
	// into place whose index never committed.
	orphan := digest.FromString("orphan")
	leftovers := []string{
		filepath.Join(root, "tmp", "object-123"),
		filepath.Join(root, "objects", "sha256", orphan.Encoded()[:2], orphan.Encoded()),
		filepath.Join(root, "objects", "sha256", "zz", "not-a-digest"),
	}
	for _, p := range leftovers {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2, err := cas.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("leftover %s survived Open: %v", p, err)
		}
	}
	// The layer no image referenced is collected too.
	if _, err := s2.Layer(ctx, lost.DiffID); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("unreferenced layer survived Open: %v", err)
	}
	after := snap(t, s2)
	if len(after.files) != 1 || !slices.Contains(before.files, after.files[0]) {
		t.Errorf("object files after Open %v, want only the survivor's (from %v)", after.files, before.files)
	}
	if got := layerTar(t, s2, info.DiffID); digest.FromBytes(got) != info.DiffID {
		t.Error("surviving layer does not rebuild")
	}
}

func testFsck(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	a, b := random(20000), random(20001)
	info := ingest(t, s, buildTar(t, []file{reg("a", a), reg("b", b), reg("c", []byte("small"))}, 0), cas.IngestOptions{})
	putImage(t, s, "fsck", info.DiffID)
	r, err := s.Fsck(ctx)
	if err != nil || !r.OK() || r.Objects != 3 || r.Entries != 3 || r.Layers != 1 {
		t.Fatalf("fsck of a sound store: %+v, %v", r, err)
	}
	pa, _ := s.ObjectPath(digest.FromBytes(a))
	corrupt := slices.Clone(a)
	corrupt[100] ^= 0xff
	if err := os.WriteFile(pa, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	pb, _ := s.ObjectPath(digest.FromBytes(b))
	if err := os.Remove(pb); err != nil {
		t.Fatal(err)
	}
	r, err = s.Fsck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[digest.Digest]string{}
	for _, p := range r.Problems {
		kinds[p.Digest] = p.Kind
	}
	if kinds[digest.FromBytes(a)] != "corrupt object" || kinds[digest.FromBytes(b)] != "missing object" || len(r.Problems) != 2 {
		t.Errorf("fsck problems %v, want a corrupt and b missing", r.Problems)
	}
}

func testConcurrentIngest(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	shared := random(200 << 10)
	const n = 8
	layers := make([][]byte, n)
	for i := range layers {
		layers[i] = buildTar(t, []file{reg("shared", shared), reg(fmt.Sprintf("own%d", i), random(10000)), reg("tiny", []byte("same small"))}, 0)
	}
	var wg sync.WaitGroup
	infos := make([]cas.LayerInfo, 2*n)
	errs := make([]error, 2*n)
	for i := range 2 * n { // every layer twice, at once
		wg.Go(func() {
			infos[i], errs[i] = s.IngestLayer(ctx, bytes.NewReader(compress(t, gz, layers[i%n])), cas.IngestOptions{})
		})
	}
	wg.Wait()
	var diffIDs []digest.Digest
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ingest %d: %v", i, err)
		}
		if i < n {
			diffIDs = append(diffIDs, infos[i].DiffID)
		}
	}
	putImage(t, s, "all", diffIDs...)
	want := n + 1 // the own files and the shared one; "tiny" is inline
	if s.InlineThreshold() < 10 {
		want++
	}
	if files := objectFiles(t, s); len(files) != want {
		t.Errorf("%d object files, want %d", len(files), want)
	}
	if o, err := s.Object(ctx, digest.FromBytes(shared)); err != nil || o.Refs != n {
		t.Errorf("shared object %+v %v, want %d refs", o, err, n)
	}
	if ls, _ := s.Layers(ctx); len(ls) != n {
		t.Errorf("%d layers, want %d", len(ls), n)
	}
	for i, d := range diffIDs {
		if got := layerTar(t, s, d); !bytes.Equal(got, layers[i]) {
			t.Errorf("layer %d does not rebuild", i)
		}
	}
	r, err := s.Fsck(ctx)
	if err != nil || !r.OK() {
		t.Errorf("fsck: %v %v", r.Problems, err)
	}
	recs, _ := s.Records(ctx)
	chunks := 0
	for k := range recs {
		if k[0] == 'C' {
			chunks++
		}
	}
	if chunks != 2*n {
		t.Errorf("%d index pieces, want %d (losing concurrent ingests must drop theirs)", chunks, 2*n)
	}
}

// testConcurrentDelete deletes an image while layers sharing its contents
// are ingested under a lease: the new layers must stay whole.
func testConcurrentDelete(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	for round := range 5 {
		shared := random(100 << 10)
		old := ingest(t, s, buildTar(t, []file{reg("shared", shared)}, 0), cas.IngestOptions{})
		img := putImage(t, s, fmt.Sprintf("old%d", round), old.DiffID)
		lease := s.NewLease()
		var wg sync.WaitGroup
		var fresh cas.LayerInfo
		var ierr, derr error
		wg.Go(func() {
			fresh, ierr = s.IngestLayer(ctx, bytes.NewReader(buildTar(t, []file{reg("again", shared), reg("x", random(9000))}, 0)), cas.IngestOptions{Lease: lease})
		})
		wg.Go(func() { derr = s.DeleteImage(ctx, img) })
		wg.Wait()
		if ierr != nil || derr != nil {
			t.Fatalf("ingest %v, delete %v", ierr, derr)
		}
		newImg := putImage(t, s, fmt.Sprintf("new%d", round), fresh.DiffID)
		lease.Release(ctx)
		if got := layerTar(t, s, fresh.DiffID); digest.FromBytes(got) != fresh.DiffID {
			t.Fatalf("round %d: layer ingested during a delete does not rebuild", round)
		}
		if r, err := s.Fsck(ctx); err != nil || !r.OK() {
			t.Fatalf("round %d: fsck %v %v", round, r.Problems, err)
		}
		if err := s.DeleteImage(ctx, newImg); err != nil {
			t.Fatal(err)
		}
	}
	if files := objectFiles(t, s); len(files) != 0 {
		t.Errorf("object files left: %v", files)
	}
}

func testImages(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	l := ingest(t, s, buildTar(t, []file{reg("f", random(5000))}, 0), cas.IngestOptions{})
	before := snap(t, s)
	missing := cas.ImageRecord{ID: digest.FromString("m"), DiffIDs: []digest.Digest{l.DiffID, digest.FromString("absent")}}
	if err := s.PutImage(ctx, missing); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("put image with a missing layer: %v, want ErrNotFound", err)
	}
	if d := before.diff(snap(t, s)); d != "" {
		t.Errorf("failed put image changed the store:\n%s", d)
	}
	base := putImage(t, s, "base", l.DiffID)
	childID, _ := s.PutBlob(ctx, []byte(`{"child":1}`))
	child := cas.ImageRecord{ID: childID, DiffIDs: []digest.Digest{l.DiffID, l.DiffID}, Parent: base, Created: epoch}
	if err := s.PutImage(ctx, child); err != nil {
		t.Fatal(err)
	}
	if err := s.PutImage(ctx, child); !errors.Is(err, cas.ErrExists) {
		t.Errorf("put image twice: %v, want ErrExists", err)
	}
	if li, _ := s.Layer(ctx, l.DiffID); li.Refs != 2 {
		t.Errorf("layer refs %d, want 2 (once per image)", li.Refs)
	}
	got, err := s.Image(ctx, childID)
	if err != nil || got.Parent != base || len(got.DiffIDs) != 2 || !got.Created.Equal(epoch) || got.Size != 5000 {
		t.Errorf("image record %+v %v", got, err)
	}
	err = s.UpdateImage(ctx, childID, func(r *cas.ImageRecord) error {
		r.RepoDigests = append(r.RepoDigests, "docker.io/library/x@"+digest.FromString("m").String())
		return nil
	})
	if got, _ := s.Image(ctx, childID); err != nil || len(got.RepoDigests) != 1 || got.Parent != base {
		t.Errorf("after update: %+v %v", got, err)
	}
	if err := s.UpdateImage(ctx, childID, func(r *cas.ImageRecord) error { r.DiffIDs = nil; return nil }); err == nil {
		t.Error("update changed an image's layers")
	}
	if all, _ := s.Images(ctx); len(all) != 2 {
		t.Errorf("%d images, want 2", len(all))
	}
	if err := s.DeleteImage(ctx, base); !errors.Is(err, cas.ErrInUse) {
		t.Errorf("delete a parent: %v, want ErrInUse", err)
	}
	for _, p := range []string{childID.String(), childID.Encoded(), childID.Encoded()[:12]} {
		if id, err := s.ResolveImageID(ctx, p); err != nil || id != childID {
			t.Errorf("resolve %q: %s %v", p, id, err)
		}
	}
	// Two IDs share their first hex digit with probability 1/16 each; make
	// a prefix that matches both images by taking the empty-ish common one.
	common := commonPrefix(base.Encoded(), childID.Encoded())
	if _, err := s.ResolveImageID(ctx, common); common != "" && !errors.Is(err, cas.ErrAmbiguous) {
		t.Errorf("resolve common prefix %q: %v, want ErrAmbiguous", common, err)
	}
	for _, p := range []string{"", "zz", "sha256:", strings.Repeat("f", 64)} {
		if _, err := s.ResolveImageID(ctx, p); !errors.Is(err, cas.ErrNotFound) && !(p == strings.Repeat("f", 64) && err == nil) {
			t.Errorf("resolve %q: %v, want ErrNotFound", p, err)
		}
	}
	if err := s.DeleteImage(ctx, childID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteImage(ctx, base); err != nil {
		t.Fatal(err)
	}
}

func commonPrefix(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[:i]
}

func testTags(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	l := ingest(t, s, buildTar(t, []file{reg("f", []byte("x"))}, 0), cas.IngestOptions{})
	a := putImage(t, s, "a", l.DiffID)
	b := putImage(t, s, "b", l.DiffID)
	if err := s.SetTag(ctx, "docker.io/library/busybox:latest", digest.FromString("absent")); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("tag an absent image: %v", err)
	}
	for _, c := range []struct {
		ref string
		id  digest.Digest
	}{{"docker.io/library/busybox:latest", a}, {"docker.io/library/busybox:1", a}, {"docker.io/library/busybox:latest", b}} {
		if err := s.SetTag(ctx, c.ref, c.id); err != nil {
			t.Fatal(err)
		}
	}
	if id, err := s.Tag(ctx, "docker.io/library/busybox:latest"); err != nil || id != b {
		t.Errorf("moved tag points at %s %v, want %s", id, err, b)
	}
	tags, _ := s.Tags(ctx)
	if len(tags) != 2 || tags[0].Ref != "docker.io/library/busybox:1" {
		t.Errorf("tags %v", tags)
	}
	if err := s.DeleteImage(ctx, a); !errors.Is(err, cas.ErrInUse) {
		t.Errorf("delete a tagged image: %v, want ErrInUse", err)
	}
	if err := s.DeleteTag(ctx, "docker.io/library/busybox:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTag(ctx, "docker.io/library/busybox:1"); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("delete an absent tag: %v", err)
	}
	if _, err := s.Tag(ctx, "docker.io/library/busybox:1"); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("deleted tag: %v", err)
	}
	if err := s.DeleteImage(ctx, a); err != nil {
		t.Errorf("delete an untagged image: %v", err)
	}
}

func testBlobs(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	data := []byte(`{"architecture":"amd64"}`)
	d, err := s.PutBlob(ctx, data)
	if err != nil || d != digest.FromBytes(data) {
		t.Fatalf("put blob: %s %v", d, err)
	}
	if got, err := s.Blob(ctx, d); err != nil || !bytes.Equal(got, data) {
		t.Errorf("blob: %q %v", got, err)
	}
	if _, err := s.Blob(ctx, digest.FromString("no")); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("absent blob: %v", err)
	}
}

func testBuckets(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	a, ab := s.Bucket("a"), s.Bucket("ab")
	for _, kv := range []struct {
		b    *cas.Bucket
		k, v string
	}{
		{a, "c/1", "one"}, {a, "c/2", "two"}, {a, "d", "dee"}, {ab, "c/1", "other bucket"},
	} {
		if err := kv.b.Put(ctx, kv.k, []byte(kv.v)); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := a.Get(ctx, "c/1"); err != nil || string(v) != "one" {
		t.Errorf("get: %q %v", v, err)
	}
	list, err := a.List(ctx, "c/")
	if err != nil || len(list) != 2 || list[0].Key != "c/1" || string(list[1].Value) != "two" {
		t.Errorf("list c/: %v %v", list, err)
	}
	if all, _ := a.List(ctx, ""); len(all) != 3 {
		t.Errorf("bucket a holds %d records, want 3 (not those of bucket ab)", len(all))
	}
	err = a.Update(ctx, func(tx *cas.BucketTx) error {
		if err := tx.Delete("c/1"); err != nil {
			return err
		}
		return errors.New("changed my mind")
	})
	if err == nil {
		t.Error("update returning an error succeeded")
	}
	if _, err := a.Get(ctx, "c/1"); err != nil {
		t.Errorf("aborted update deleted a key: %v", err)
	}
	if err := a.Delete(ctx, "c/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "c/1"); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("deleted key: %v", err)
	}
}

func testDiskUsage(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	var common []file
	for i := range 20 {
		common = append(common, reg(fmt.Sprintf("lib/f%d", i), random(10000)))
	}
	own := func(name string) []byte {
		return buildTar(t, append(slices.Clone(common), reg(name, random(10000))), 0)
	}
	l1 := ingest(t, s, own("one"), cas.IngestOptions{})
	l2 := ingest(t, s, own("two"), cas.IngestOptions{})
	putImage(t, s, "one", l1.DiffID)
	putImage(t, s, "two", l2.DiffID)
	u, err := s.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.LogicalBytes != 2*21*10000 || u.ObjectBytes != 22*10000 || u.SavedBytes != 20*10000 || u.ObjectFiles != 22 {
		t.Errorf("usage %+v: want logical 420000, stored 220000, saved 200000 in 22 files", u)
	}
	if len(u.Images) != 2 || u.Images[0].Size != 210000 {
		t.Errorf("image usage %+v", u.Images)
	}
}

// testOfferedFiles: IngestOptions.Files offers an entry's bytes as a file
// to clone. The store asks for every regular file it would write; a right
// file gives the same layer as without it; a wrong one never becomes an
// object: refused with ErrDigestMismatch where the file system clones,
// ignored where it cannot.
func testOfferedFiles(t *testing.T, s *cas.Store) {
	ctx := context.Background()
	// Next to the store, on its file system, so that a clone can work.
	tmp, err := os.MkdirTemp(filepath.Dir(s.Root()), "offered-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	right, other := random(100000), random(100000)
	rightFile, otherFile := filepath.Join(tmp, "right"), filepath.Join(tmp, "other")
	if err := os.WriteFile(rightFile, right, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherFile, other, 0o600); err != nil {
		t.Fatal(err)
	}
	offer := func(file string, asked map[string]int64) func(string, int64) *os.File {
		return func(p string, size int64) *os.File {
			asked[p] = size
			f, err := os.Open(file)
			if err != nil {
				t.Error(err)
				return nil
			}
			return f
		}
	}
	content := func(d digest.Digest) []byte {
		t.Helper()
		rc, err := s.OpenContent(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	raw := buildTar(t, []file{dir("d"), reg("d/big", right)}, 0)
	asked := map[string]int64{}
	info := ingest(t, s, raw, cas.IngestOptions{Files: offer(rightFile, asked)})
	if s.InlineThreshold() < int64(len(right)) && asked["d/big"] != int64(len(right)) {
		t.Errorf("the store asked for %v, want d/big of %d bytes", asked, len(right))
	}
	if got := layerTar(t, s, info.DiffID); !bytes.Equal(got, raw) {
		t.Error("the layer tar differs from the one ingested")
	}
	if !bytes.Equal(content(digest.FromBytes(right)), right) {
		t.Error("the stored content differs from the file's")
	}
	putImage(t, s, "offered", info.DiffID)

	raw2 := buildTar(t, []file{reg("lie", random(100000))}, 0)
	before := snap(t, s)
	info2, err := s.IngestLayer(ctx, bytes.NewReader(raw2), cas.IngestOptions{Files: offer(otherFile, map[string]int64{})})
	if err != nil {
		if !errors.Is(err, cas.ErrDigestMismatch) {
			t.Fatalf("wrong file offered: %v, want ErrDigestMismatch", err)
		}
		if d := before.diff(snap(t, s)); d != "" {
			t.Errorf("a refused ingest changed the store:\n%s", d)
		}
		return
	}
	if got := layerTar(t, s, info2.DiffID); !bytes.Equal(got, raw2) {
		t.Error("with a wrong file offered, the layer tar differs from the one ingested")
	}
	if _, err := s.Object(ctx, digest.FromBytes(other)); !errors.Is(err, cas.ErrNotFound) {
		t.Errorf("the wrong file's bytes were stored: %v", err)
	}
}
