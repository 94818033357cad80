package launcher_test

import (
	"context"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/launcher"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
)

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
	// /bin -> /usr/bin, as in Debian; and /link -> a directory that
	// exists on the host (with a "true" in it), not in the image.
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "true"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/bin", filepath.Join(lower, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(lower, "link")); err != nil {
		t.Fatal(err)
	}
	src, err := layerfs.NewDirSource(lower)
	if err != nil {
		t.Fatal(err)
	}
	var reqs layertest.RequestLog
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
			Env: []string{"PATH=/link:/usr/local/bin:/bin:/usr/bin"}},
	}
	names := []string{"proc", "hosts", "work", "local", "bin", "true"}
	launcher.Prefetch(context.Background(), spec)
	// /link/true was looked for in the rootfs: the link's absolute target
	// begins with a name (tmp) asked of the mount's root, which a walk
	// that left the rootfs for the host would never have asked.
	first := strings.Split(strings.TrimPrefix(host, "/"), "/")[0]
	if reqs.Lookups(first) == 0 {
		t.Errorf("no LOOKUP of %q: /link was followed outside the rootfs", first)
	}
	for _, name := range names {
		if reqs.Lookups(name) == 0 {
			t.Errorf("no LOOKUP of %q", name)
		}
	}
	// What the init does next is served by the kernel's cache.
	warm := map[string]int{}
	for _, name := range names {
		warm[name] = reqs.Lookups(name)
	}
	for _, p := range []string{"proc", "etc/hosts", "work", "usr/local/bin/true", "usr/bin/true", "bin/true"} {
		_, _ = os.Lstat(filepath.Join(mnt, p))
	}
	for _, name := range names {
		if n := reqs.Lookups(name) - warm[name]; n != 0 {
			t.Errorf("%d LOOKUPs of %q after Prefetch resolved it:\n%s", n, name, reqs.String())
		}
	}
}
