package layerfs_test

import (
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
)

// TestGetattrKeepsNodeNumber: fstat through an open upper file and stat
// of an upper-only or copied-up file answer the node's own inode number,
// so go-fuse never has to override it (which it logs on every call).
func TestGetattrKeepsNodeNumber(t *testing.T) {
	layertest.Skip(t)
	src := layertest.NewMemSource(layertest.Layer{{Path: "lower", Type: cas.TypeRegular, Mode: 0644, Data: []byte("l")}})
	var logs syncBuffer
	up, work := t.TempDir(), t.TempDir()
	_, mnt := layertest.MountT(t, layerfs.MountOptions{Lowers: []layerfs.Source{src}, UpperDir: up, WorkDir: work, Logger: log.New(&logs, "", 0)})
	for _, name := range []string{"new", "lower"} {
		f, err := os.OpenFile(filepath.Join(mnt, name), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("x"))
		var fst, lst unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := unix.Lstat(filepath.Join(mnt, name), &lst); err != nil {
			t.Fatal(err)
		}
		if fst.Ino != lst.Ino {
			t.Errorf("%s: fstat ino %d, lstat ino %d", name, fst.Ino, lst.Ino)
		}
	}
	if strings.Contains(logs.String(), "overriding ino") {
		t.Errorf("go-fuse overrode inode numbers:\n%s", logs.String())
	}
}
