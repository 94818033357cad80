package launcher_test

import (
	"bytes"
	"context"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/launcher"
	"github.com/fusebox/fusebox/layerfs"
)

// lockedBuffer collects go-fuse's request log from its serving goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) lookups() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), ": LOOKUP ")
}

// TestPrefetchWarmsARootfs: on a real layerfs mount, Prefetch makes the
// kernel look up the container's mount points and its command along PATH,
// so that the init's own walk of the same paths costs no request; and a
// symbolic link to an absolute path is followed inside the rootfs, never
// to the host's directory of the same name.
func TestPrefetchWarmsARootfs(t *testing.T) {
	testenv.RequireRoot(t, "to mount a FUSE file system")
	testenv.RequireFUSE(t, "to mount the rootfs")
	lower := t.TempDir()
	for _, d := range []string{"usr/bin", "proc", "etc", "work"} {
		if err := os.MkdirAll(filepath.Join(lower, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "usr/bin/true"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// /bin -> /usr/bin, as in Debian; on the host, /usr/bin/true exists
	// too, and /host-only is a directory only the host has.
	if err := os.Symlink("/usr/bin", filepath.Join(lower, "bin")); err != nil {
		t.Fatal(err)
	}
	src, err := layerfs.NewDirSource(lower)
	if err != nil {
		t.Fatal(err)
	}
	var reqs lockedBuffer
	mnt := t.TempDir()
	srv, err := layerfs.Mount(context.Background(), mnt, layerfs.MountOptions{
		Lowers: []layerfs.Source{src}, Debug: true, Logger: log.New(&reqs, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unmount()

	spec := &specs.Spec{
		Root:   &specs.Root{Path: mnt},
		Mounts: []specs.Mount{{Destination: "/proc"}, {Destination: "/etc/hosts"}},
		Process: &specs.Process{Cwd: "/work", Args: []string{"true"},
			Env: []string{"PATH=/usr/local/bin:/bin:/usr/bin"}},
	}
	before := reqs.lookups()
	launcher.Prefetch(context.Background(), spec)
	if reqs.lookups() == before {
		t.Fatal("Prefetch sent no LOOKUP")
	}
	for _, p := range []string{"proc", "etc/hosts", "work", "usr/local", "usr/bin/true", "bin"} {
		if !strings.Contains(reqs.String(), `"`+filepath.Base(p)+`"`) {
			t.Errorf("no LOOKUP of %q", p)
		}
	}
	// What the init does next is served by the kernel's cache.
	warm := reqs.lookups()
	for _, p := range []string{"proc", "etc/hosts", "work", "usr/local/bin/true", "usr/bin/true"} {
		_, _ = os.Lstat(filepath.Join(mnt, p))
	}
	if n := reqs.lookups() - warm; n != 0 {
		t.Errorf("%d LOOKUPs after Prefetch for paths it resolved:\n%s", n, reqs.String())
	}
}
