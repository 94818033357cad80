package layerfs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestJournalRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []Change
		want []Change
	}{
		{"add marks parents", []Change{{"/a/b/c", ChangeAdd}}, []Change{{"/a", ChangeModify}, {"/a/b", ChangeModify}, {"/a/b/c", ChangeAdd}}},
		{"add then delete vanishes", []Change{{"/x", ChangeAdd}, {"/x", ChangeDelete}}, []Change{}},
		{"delete then add is a change", []Change{{"/x", ChangeDelete}, {"/x", ChangeAdd}}, []Change{{"/x", ChangeModify}}},
		{"added stays added", []Change{{"/x", ChangeAdd}, {"/x", ChangeModify}}, []Change{{"/x", ChangeAdd}}},
		{"under a deleted dir", []Change{{"/d/f", ChangeDelete}, {"/d", ChangeDelete}}, []Change{{"/d", ChangeDelete}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := OpenJournal(filepath.Join(t.TempDir(), "j"))
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			for _, op := range tc.ops {
				j.record(op.Path, op.Kind)
			}
			if got := j.Changes(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestJournalCompaction(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	j, err := OpenJournal(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		j.record("/tmp/x", ChangeAdd)
		j.record("/tmp/x", ChangeDelete)
	}
	j.record("/etc/passwd", ChangeModify)
	want := j.Changes()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, err = OpenJournal(p) // compacts
	if err != nil {
		t.Fatal(err)
	}
	j.record("/new", ChangeAdd)
	j.Close()
	fi, _ := os.Stat(p)
	if fi.Size() > 200 {
		t.Errorf("journal is %d bytes after compaction", fi.Size())
	}
	j, err = OpenJournal(p)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	want = append(want, Change{"/new", ChangeAdd})
	got := j.Changes()
	if len(got) != 4 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("after compaction %v, want %v", got, want)
	}
}

// TestJournalWritesOnlyChanges checks that a change which leaves the
// recorded state as it was (a file opened for writing again, a path
// deleted twice) adds nothing to the file, and that replaying the file
// still gives the state the journal had.
func TestJournalWritesOnlyChanges(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ops       []Change
		wantLines int
	}{
		{"modified again", []Change{{"/a/f", ChangeModify}, {"/a/f", ChangeModify}, {"/a/f", ChangeModify}}, 1},
		{"added then modified", []Change{{"/n", ChangeAdd}, {"/n", ChangeModify}, {"/n", ChangeAdd}}, 1},
		{"deleted twice", []Change{{"/d", ChangeDelete}, {"/d", ChangeDelete}}, 1},
		{"new parent is a change", []Change{{"/a", ChangeModify}, {"/b/c", ChangeModify}, {"/b/c", ChangeModify}}, 2},
		{"added, deleted, added", []Change{{"/x", ChangeAdd}, {"/x", ChangeDelete}, {"/x", ChangeAdd}, {"/x", ChangeModify}}, 3},
		{"deleted then made again", []Change{{"/y", ChangeDelete}, {"/y", ChangeAdd}, {"/y", ChangeAdd}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "j")
			j, err := OpenJournal(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range tc.ops {
				j.record(op.Path, op.Kind)
			}
			want := j.Changes()
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if lines := strings.Count(string(b), "\n"); lines != tc.wantLines {
				t.Errorf("%d lines written, want %d:\n%s", lines, tc.wantLines, b)
			}
			got, err := ReadJournal(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("replayed %v, want %v", got, want)
			}
		})
	}
}
