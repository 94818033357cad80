package layerfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"

	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
)

func dirSource(t *testing.T, l layertest.Layer) layerfs.Source {
	d := t.TempDir()
	layertest.WriteDir(t, d, l)
	s, err := layerfs.NewDirSource(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDirSourceConformance(t *testing.T) {
	layertest.Run(t, dirSource)
}

func TestMemSourceConformance(t *testing.T) {
	layertest.Run(t, func(t *testing.T, l layertest.Layer) layerfs.Source { return layertest.NewMemSource(l) })
}

// TestDirSourceFormats: the three spellings of whiteouts and opaque
// directories a directory layer may use all become entries of their own.
func TestDirSourceFormats(t *testing.T) {
	d := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(d, "a/b"), 0755))
	must(t, os.MkdirAll(filepath.Join(d, "u"), 0755))
	must(t, os.MkdirAll(filepath.Join(d, "t"), 0755))
	must(t, os.WriteFile(filepath.Join(d, "a/.wh.gone"), nil, 0644))
	must(t, os.WriteFile(filepath.Join(d, "t/.wh..wh..opq"), nil, 0644))
	must(t, unix.Mknod(filepath.Join(d, "a/b/dead"), unix.S_IFCHR, 0))
	must(t, unix.Lsetxattr(filepath.Join(d, "a/b"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, unix.Lsetxattr(filepath.Join(d, "u"), "user.overlay.opaque", []byte("y"), 0))
	must(t, unix.Lsetxattr(filepath.Join(d, "u"), "user.keep", []byte("1"), 0))
	src, err := layerfs.NewDirSource(d)
	must(t, err)
	entries, err := src.Entries(context.Background())
	must(t, err)
	got := map[string]bool{}
	for _, e := range entries {
		got[e.Type.String()+" "+e.Path] = true
		if e.Path == "u" && e.Type == cas.TypeDir {
			if _, ok := e.Xattrs["user.overlay.opaque"]; ok || string(e.Xattrs["user.keep"]) != "1" {
				t.Errorf("u xattrs %v: want user.keep only", e.Xattrs)
			}
		}
	}
	for _, want := range []string{
		"whiteout a/gone", "whiteout a/b/dead", "opaque a/b", "opaque u", "opaque t",
		"dir a", "dir a/b", "dir u", "dir t", "dir .",
	} {
		if !got[want] {
			t.Errorf("missing entry %q in %v", want, got)
		}
	}
	for k := range got {
		if strings.Contains(k, ".wh.") {
			t.Errorf("a .wh. name leaked as %q", k)
		}
	}
}

func TestDirSourceRefusesMetacopy(t *testing.T) {
	d := t.TempDir()
	must(t, os.WriteFile(filepath.Join(d, "f"), nil, 0644))
	must(t, unix.Lsetxattr(filepath.Join(d, "f"), "trusted.overlay.metacopy", nil, 0))
	src, err := layerfs.NewDirSource(d)
	must(t, err)
	if _, err := src.Entries(context.Background()); !errors.Is(err, layerfs.ErrBadLayer) {
		t.Fatalf("entries of a dir with a metacopy file: %v, want ErrBadLayer", err)
	}
}

// TestDirSourceWalkOrder: the directories of a layer are listed in
// parallel, yet the entries come in the order of a depth-first walk in
// name order, every time, so a hard link's first path (the one the other
// paths link to) is always the same.
func TestDirSourceWalkOrder(t *testing.T) {
	d := t.TempDir()
	var want []string
	want = append(want, ".")
	for i := 0; i < 12; i++ {
		sub := filepath.Join(d, string(rune('a'+i)))
		must(t, os.MkdirAll(filepath.Join(sub, "deep"), 0755))
		rel := filepath.Base(sub)
		want = append(want, rel, rel+"/deep")
		for j := 0; j < 5; j++ {
			name := string(rune('p' + j))
			must(t, os.WriteFile(filepath.Join(sub, "deep", name), []byte(name), 0644))
			want = append(want, rel+"/deep/"+name)
		}
	}
	// z/link is a second path of l/deep/p: it links to the first one met.
	must(t, os.Mkdir(filepath.Join(d, "z"), 0755))
	must(t, os.Link(filepath.Join(d, "l/deep/p"), filepath.Join(d, "z/link")))
	want = append(want, "z", "z/link")
	src, err := layerfs.NewDirSource(d)
	must(t, err)
	for run := 0; run < 5; run++ {
		entries, err := src.Entries(context.Background())
		must(t, err)
		var got []string
		for _, e := range entries {
			got = append(got, e.Path)
			if e.Path == "z/link" && (e.Type != cas.TypeHardlink || e.Linkname != "l/deep/p") {
				t.Errorf("z/link: %v -> %q, want a hard link to l/deep/p", e.Type, e.Linkname)
			}
			if e.Path == "l/deep/p" && e.Type != cas.TypeRegular {
				t.Errorf("l/deep/p: %v, want the regular file", e.Type)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("run %d: entries in order\n%v\nwant\n%v", run, got, want)
		}
	}
}

// TestDirSourceWalkError: an error in one of the directories listed in
// parallel (here a socket, which no layer may hold) fails the whole walk.
func TestDirSourceWalkError(t *testing.T) {
	d := t.TempDir()
	for _, s := range []string{"a", "b", "c"} {
		must(t, os.MkdirAll(filepath.Join(d, s, "x"), 0755))
	}
	must(t, unix.Mknod(filepath.Join(d, "c", "x", "sock"), unix.S_IFSOCK|0644, 0))
	src, err := layerfs.NewDirSource(d)
	must(t, err)
	if _, err := src.Entries(context.Background()); !errors.Is(err, layerfs.ErrBadLayer) {
		t.Errorf("layer with a socket: %v, want ErrBadLayer", err)
	}
}
