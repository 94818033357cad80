package layerfs

import (
	"os"
	"path/filepath"
	"reflect"
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
