package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Leftovers of an interrupted create and remove go at Open.
	for _, d := range []string{tmpPrefix + "123", rmPrefix + "old"} {
		if err := os.MkdirAll(filepath.Join(dir, d, DataDir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Open left %d entries", len(ents))
	}
	v, created, err := s.Create(ctx, "data", CreateOptions{Labels: map[string]string{"a": "b"}})
	if err != nil || !created {
		t.Fatalf("Create: %v, created %v", err, created)
	}
	if v.Mountpoint != filepath.Join(dir, "data", DataDir) || v.Driver != Driver || v.Labels["a"] != "b" || v.Anonymous() {
		t.Errorf("volume %+v", v)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("mountpoint: %v", err)
	}
	again, created, err := s.Create(ctx, "data", CreateOptions{})
	if err != nil || created || again.Labels["a"] != "b" || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Errorf("second Create: %+v, created %v, %v", again, created, err)
	}
	anon, _, err := s.Acquire(ctx, "", "ctr1", CreateOptions{})
	if err != nil || !anon.Anonymous() || len(anon.Name) != 64 {
		t.Fatalf("anonymous Acquire: %+v, %v", anon, err)
	}
	if _, _, err := s.Acquire(ctx, "data", "ctr1", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Ref("data", "ctr2")
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %v, %v", list, err)
	}
	err = s.Remove(ctx, "data", true)
	if !errors.Is(err, ErrInUse) || err.Error() != "remove data: volume is in use - [ctr1, ctr2]" {
		t.Errorf("Remove in use: %v", err)
	}
	s.Release("ctr1")
	if removed, err := s.RemoveIfUnused(ctx, "data"); removed || err != nil {
		t.Errorf("RemoveIfUnused of a volume ctr2 uses: %v, %v", removed, err)
	}
	if removed, err := s.RemoveIfUnused(ctx, anon.Name); !removed || err != nil {
		t.Errorf("RemoveIfUnused of the released anonymous volume: %v, %v", removed, err)
	}
	s.Release("ctr2")
	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, "data")
	if !errors.Is(err, ErrNotFound) || err.Error() != "get data: no such volume" {
		t.Errorf("Get after Remove: %v", err)
	}
	if err := s.Remove(ctx, "data", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove of a missing volume: %v", err)
	}
	if err := s.Remove(ctx, "data", true); err != nil {
		t.Errorf("forced Remove of a missing volume: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("volumes dir not empty: %d entries", len(ents))
	}
}

func TestStoreRefusals(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		o    CreateOptions
		err  error
		msg  string
	}{
		{"a/b", CreateOptions{}, ErrInvalidName, `create a/b: "a/b" includes invalid characters for a local volume name`},
		{"..", CreateOptions{}, ErrInvalidName, "includes invalid characters"},
		{"v", CreateOptions{}, ErrInvalidName, "includes invalid characters"},
		{"v1", CreateOptions{Driver: "nfs"}, ErrBadDriver, `create v1: error looking up volume plugin nfs: plugin "nfs" not found`},
		{"v1", CreateOptions{Options: map[string]string{"type": "tmpfs"}}, ErrBadOption, `create v1: missing required option: "device"`},
		{"v1", CreateOptions{Options: map[string]string{"device": "tmpfs"}}, ErrBadOption, `create v1: missing required option: "type"`},
		{"v1", CreateOptions{Options: map[string]string{"color": "red"}}, ErrBadOption, `create v1: invalid option key: "color"`},
	} {
		_, _, err := s.Create(ctx, c.name, c.o)
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Create(%q, %+v): %v, want %v %q", c.name, c.o, err, c.err, c.msg)
		}
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Errorf("refused creates left %v", list)
	}
}
