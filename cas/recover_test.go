package cas

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/opencontainers/go-digest"
)

func tarOf(t testing.TB, files map[string][]byte, order []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range order {
		data := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestOpenCleansIndexLeftovers writes the Badger records a crash between
// an ingest's steps leaves (index pieces without a layer record, inline
// bytes and object records nothing references) and checks Open removes
// them and nothing else.
func TestOpenCleansIndexLeftovers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 10000)
	rand.Read(big)
	layer := tarOf(t, map[string][]byte{"big": big, "small": []byte("small")}, []string{"big", "small"})
	info, err := s.IngestLayer(ctx, bytes.NewReader(layer), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutImage(ctx, ImageRecord{ID: digest.FromString("img"), DiffIDs: []digest.Digest{info.DiffID}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Bucket("containers").Put(ctx, "c1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	good, err := s.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var id chunkID
	rand.Read(id[:])
	orphan := digest.FromString("orphan inline")
	zeroRef := digest.FromString("zero refs")
	leftovers := map[string][]byte{
		string(chunkKey(id, partEntries, 0)): []byte("half an index"),
		string(chunkKey(id, partSplit, 0)):   []byte("half a tar-split"),
		string(inlineKey(orphan)):            []byte("orphan inline"),
		string(objectKey(zeroRef)):           objectValue{Size: 9, Inline: true}.encode(),
		string(inlineKey(zeroRef)):           []byte("zero refs"),
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		for k, v := range leftovers {
			if err := txn.Set([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, err := s.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range leftovers {
		if _, ok := after[k]; ok {
			t.Errorf("leftover record %q survived Open", k)
		}
	}
	for k, v := range good {
		if !bytes.Equal(after[k], v) {
			t.Errorf("record %q changed or vanished at Open", k)
		}
	}
	if len(after) != len(good) {
		t.Errorf("%d records after Open, want %d", len(after), len(good))
	}
}

// TestKeysRoundTrip checks each key parser inverts its constructor.
func TestKeysRoundTrip(t *testing.T) {
	d := digest.FromString("x")
	for _, kind := range []byte{kindLayer, kindObject, kindInline, kindBlob, kindImage} {
		k, got, err := parseDigestKey(digestKey(kind, d))
		if err != nil || k != kind || got != d {
			t.Errorf("digest key %c: %c %s %v", kind, k, got, err)
		}
	}
	var id chunkID
	rand.Read(id[:])
	if gid, part, seq, err := parseChunkKey(chunkKey(id, partSplit, 70000)); err != nil || gid != id || part != partSplit || seq != 70000 {
		t.Errorf("chunk key: %v %c %d %v", gid, part, seq, err)
	}
	if ref, err := parseTagKey(tagKey("docker.io/library/x:1")); err != nil || ref != "docker.io/library/x:1" {
		t.Errorf("tag key: %q %v", ref, err)
	}
	for _, c := range [][2]string{{"a", "b/c"}, {"", "k"}, {"ab", ""}} {
		if n, k, err := parseBucketKey(bucketKey(c[0], c[1])); err != nil || n != c[0] || k != c[1] {
			t.Errorf("bucket key %q: %q %q %v", c, n, k, err)
		}
	}
	ov := objectValue{Size: 1 << 40, Refs: 3, Inline: true}
	if got, err := decodeObjectValue(ov.encode()); err != nil || got != ov {
		t.Errorf("object value: %+v %v", got, err)
	}
	if _, _, err := parseDigestKey([]byte("Lnot-a-digest")); err == nil {
		t.Error("parsed a malformed digest key")
	}
}

// TestManyFiles ingests a layer of many small files: the commit must fit
// Badger's transaction limits and the index must come back whole.
func TestManyFiles(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 20000
	if testing.Short() {
		n = 2000
	}
	files := map[string][]byte{}
	var order []string
	for i := range n {
		name := fmt.Sprintf("d%03d/f%05d", i%500, i)
		files[name] = fmt.Appendf(nil, "file %d\n", i)
		order = append(order, name)
	}
	layer := tarOf(t, files, order)
	start := time.Now()
	info, err := s.IngestLayer(ctx, bytes.NewReader(layer), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ingest %v", time.Since(start))
	es, err := s.Entries(ctx, info.DiffID)
	if err != nil || len(es) != n {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	rc, err := s.LayerTar(ctx, info.DiffID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, layer) {
		t.Fatalf("rebuild: %v", err)
	}
	if err := s.PutImage(ctx, ImageRecord{ID: digest.FromString("many"), DiffIDs: []digest.Digest{info.DiffID}}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := s.DeleteImage(ctx, digest.FromString("many")); err != nil {
		t.Fatal(err)
	}
	t.Logf("delete %v", time.Since(start))
	recs, _ := s.Records(ctx)
	if len(recs) != 0 {
		t.Errorf("%d records left", len(recs))
	}
}

// TestRecountAfterCrash leaves what a process dying between the reference
// count transactions of a commit leaves (a pending marker, counts too high,
// a record for content no layer names) and checks Open recounts.
func TestRecountAfterCrash(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 10000)
	rand.Read(big)
	layer := tarOf(t, map[string][]byte{"big": big, "small": []byte("small")}, []string{"big", "small"})
	info, err := s.IngestLayer(ctx, bytes.NewReader(layer), IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutImage(ctx, ImageRecord{ID: digest.FromString("img"), DiffIDs: []digest.Digest{info.DiffID}}); err != nil {
		t.Fatal(err)
	}
	stray := make([]byte, 9000)
	rand.Read(stray)
	strayD := digest.FromBytes(stray)
	if err := os.MkdirAll(filepath.Dir(s.objectFile(strayD)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.objectFile(strayD), stray, 0o600); err != nil {
		t.Fatal(err)
	}
	var id chunkID
	rand.Read(id[:])
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(objectKey(digest.FromBytes(big)), objectValue{Size: 10000, Refs: 7}.encode()); err != nil {
			return err
		}
		if err := txn.Set(objectKey(strayD), objectValue{Size: 9000, Refs: 1}.encode()); err != nil {
			return err
		}
		return txn.Set(pendingKey(id), []byte(digest.FromString("never committed")))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if o, err := s.Object(ctx, digest.FromBytes(big)); err != nil || o.Refs != 1 {
		t.Errorf("recounted object: %+v %v, want 1 ref", o, err)
	}
	if _, err := s.Object(ctx, strayD); !errors.Is(err, ErrNotFound) {
		t.Errorf("object no layer names: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(s.objectFile(strayD)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file of an object no layer names: %v", err)
	}
	recs, _ := s.Records(ctx)
	for k := range recs {
		if _, err := parsePendingKey([]byte(k)); err == nil {
			t.Errorf("pending marker survived Open")
		}
	}
	if r, err := s.Fsck(ctx); err != nil || !r.OK() {
		t.Errorf("fsck after recount: %v %v", r.Problems, err)
	}
}
