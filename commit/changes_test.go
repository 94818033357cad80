package commit_test

import (
	"errors"
	"testing"

	"github.com/fusebox/fusebox/commit"
	"github.com/fusebox/fusebox/layerfs"
)

func TestChanges(t *testing.T) {
	const C, A, D = layerfs.ChangeModify, layerfs.ChangeAdd, layerfs.ChangeDelete
	ch := func(p string, k layerfs.ChangeKind) layerfs.Change { return layerfs.Change{Path: p, Kind: k} }
	for _, tc := range []struct {
		name string
		in   []layerfs.Change
		want string
		err  error
	}{
		{"empty", nil, "", nil},
		{"parents shown changed", []layerfs.Change{ch("/a/b/c", A)}, "C /a\nC /a/b\nA /a/b/c\n", nil},
		{"sorted in byte order", []layerfs.Change{ch("/b", A), ch("/a-b", A), ch("/a/c", D)}, "C /a\nA /a-b\nD /a/c\nA /b\n", nil},
		{"nothing under a deleted dir", []layerfs.Change{ch("/d", D), ch("/d/x", D), ch("/d/y/z", C)}, "D /d\n", nil},
		{"under an added dir all is added", []layerfs.Change{ch("/n", A), ch("/n/x", C), ch("/n/gone", D), ch("/n/s/t", A)}, "A /n\nA /n/s\nA /n/s/t\nA /n/x\n", nil},
		{"paths cleaned", []layerfs.Change{ch("/a//b/", A)}, "C /a\nA /a/b\n", nil},
		{"relative path", []layerfs.Change{ch("a", A)}, "", commit.ErrBadChangeList},
		{"root", []layerfs.Change{ch("/", C)}, "", commit.ErrBadChangeList},
		{"unknown kind", []layerfs.Change{ch("/a", 3)}, "", commit.ErrBadChangeList},
		{"contradiction", []layerfs.Change{ch("/a", A), ch("/a", D)}, "", commit.ErrBadChangeList},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := commit.Changes(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if s := commit.Format(got); s != tc.want {
				t.Errorf("got\n%swant\n%s", s, tc.want)
			}
		})
	}
}

func TestAPIChanges(t *testing.T) {
	got := commit.APIChanges([]layerfs.Change{{Path: "/a", Kind: layerfs.ChangeModify}, {Path: "/a/b", Kind: layerfs.ChangeAdd}, {Path: "/c", Kind: layerfs.ChangeDelete}})
	for i, want := range []uint8{0, 1, 2} {
		if uint8(got[i].Kind) != want {
			t.Errorf("%s: kind %d, want %d", got[i].Path, got[i].Kind, want)
		}
	}
}
