package layerfs_test

import (
	"path/filepath"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
)

// TestPosix runs go-fuse's POSIX checks in a writable mount over one lower
// layer (the checks create everything they use, in the upper dir).
func TestPosix(t *testing.T) {
	layertest.Skip(t)
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fn := posixtest.All[name]
		if name == "FcntlFlockLocksFile" {
			// It expects a second open file of the same process to
			// conflict, as go-fuse's loopback gives with OFD locks on
			// its backing files. layerfs leaves locks to the kernel,
			// where POSIX locks belong to the process, as on ext4 or
			// kernel overlayfs; TestLocks checks them across processes.
			continue
		}
		t.Run(name, func(t *testing.T) {
			// The checks run in a directory of the lower layer, so its
			// copy-up is exercised too; they expect it to start empty.
			src := dirSource(t, layertest.Layer{dirE("t", 0777), reg("lower", 0644, "lower")})
			_, mnt := layertest.MountT(t, layerfs.MountOptions{Lowers: []layerfs.Source{src}, UpperDir: t.TempDir(), WorkDir: t.TempDir()})
			fn(t, filepath.Join(mnt, "t"))
		})
	}
}
