package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// duOnce is the disk the files under root take on its file system, each
// inode once (a file and the store object that is the same inode count
// once); other file systems mounted below are not entered.
func duOnce(t *testing.T, root string) int64 {
	t.Helper()
	var rst unix.Stat_t
	if err := unix.Stat(root, &rst); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		if st.Dev != rst.Dev {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// TestCommitAdoptsThroughCLI: `commit` of a stopped container with a new
// 64 MiB file grows the daemon's disk by far less than the file (the store
// adopts the upper file), and the container, started again, rewrites the
// file without changing the committed image; a running container's commit
// is not changed by a write after it either.
func TestCommitAdoptsThroughCLI(t *testing.T) {
	e, _ := changesEnv(t)
	const size = 64 << 20
	e.ok("run", "--name", "writer", "busybox", "sh", "-c", "[ -e /big ] && echo rewritten > /big || head -c 67108864 /dev/urandom > /big")
	before := duOnce(t, e.root)
	e.ok("commit", "writer", "adopted:v1")
	grew := duOnce(t, e.root) - before
	t.Logf("commit of a %d MiB new file: %d KiB more disk", size>>20, grew>>10)
	if grew > size/8 {
		t.Errorf("commit of a %d MiB new file took %d MiB more disk", size>>20, grew>>20)
	}
	sum := func(ref string) string {
		t.Helper()
		return strings.Fields(e.ok("run", "--rm", ref, "sha256sum", "/big"))[0]
	}
	committed := sum("adopted:v1")

	// Started again, the container's command rewrites /big (O_TRUNC).
	e.ok("start", "-a", "writer")
	if got := sum("adopted:v1"); got != committed {
		t.Errorf("the committed image's /big changed when the container rewrote it: %s, was %s", got, committed)
	}
	e.ok("commit", "writer", "adopted:v2")
	if out := e.ok("run", "--rm", "adopted:v2", "cat", "/big"); out != "rewritten\n" {
		t.Errorf("the second commit's /big = %q", out)
	}
	if got := sum("adopted:v1"); got != committed {
		t.Errorf("the first image's /big changed after a second commit: %s", got)
	}

	// A running container is not adopted from: its writes after the
	// commit stay its own.
	e.ok("run", "-d", "--name", "runner", "busybox", "sh", "-c", "head -c 1048576 /dev/urandom > /big; touch /ready; exec sleep 600")
	for i := 0; !strings.Contains(e.ok("diff", "runner"), "A /ready"); i++ {
		if i > 100 {
			t.Fatal("the running container did not write its file")
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.ok("commit", "runner", "adopted:running")
	running := sum("adopted:running")
	e.ok("exec", "runner", "sh", "-c", "echo more >> /big")
	if got := sum("adopted:running"); got != running {
		t.Errorf("a write in the running container changed its committed image")
	}
	e.ok("rm", "-f", "runner")
}
