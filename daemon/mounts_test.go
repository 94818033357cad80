package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	moby "github.com/moby/moby/client"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/testdata"
)

func skipMounts(t *testing.T) {
	t.Helper()
	testenv.RequireFUSE(t, "image mounts")
}

// runDaemon serves a daemon on root until the returned stop is called (or
// the test ends); logs go to the returned buffer as well as the test's.
func runDaemon(t *testing.T, root string) (d *Daemon, host string, stop func()) {
	t.Helper()
	host = "unix://" + filepath.Join(root, "fusebox.sock")
	ctx, cancel := context.WithCancel(context.Background())
	d, err := New(ctx, Config{Root: root, Host: host, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	c, err := moby.New(moby.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; ; i++ {
		if _, err := c.Ping(ctx, moby.PingOptions{}); err == nil {
			break
		} else if i > 200 {
			t.Fatalf("daemon did not answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d, host, stop
}

// loadBusybox loads the busybox test image and returns its ID.
func loadBusybox(t *testing.T, host string) digest.Digest {
	t.Helper()
	img := testdata.Busybox(t)
	archive, err := os.ReadFile(img.DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	c, err := moby.New(moby.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := tryLoad(c, archive); err != nil {
		t.Fatalf("load busybox: %v", err)
	}
	return img.ID
}

func mountT(t *testing.T, d *Daemon, spec MountSpec) *ImageMount {
	t.Helper()
	m, err := d.Mount(context.Background(), spec)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return m
}

// fileInfo is what the tree comparison looks at for one path.
type fileInfo struct {
	mode     uint32 // type and permission bits
	uid, gid uint32
	size     int64
	nlink    uint64
	rdev     uint64
	content  string // regular files: the bytes; symlinks: the target
}

func (f fileInfo) String() string {
	c := f.content
	if len(c) > 40 {
		c = fmt.Sprintf("%d bytes %s", len(c), digest.FromString(c).Encoded()[:12])
	}
	return fmt.Sprintf("mode %#o uid %d gid %d size %d nlink %d rdev %d %q", f.mode, f.uid, f.gid, f.size, f.nlink, f.rdev, c)
}

// readTree reads every path under root. Directory sizes and link counts
// depend on the file system and are left out.
func readTree(t *testing.T, root string) map[string]fileInfo {
	t.Helper()
	out := map[string]fileInfo{}
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fi := fileInfo{mode: st.Mode, uid: st.Uid, gid: st.Gid, size: st.Size, nlink: st.Nlink, rdev: st.Rdev}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi.content = string(b)
		case unix.S_IFLNK:
			if fi.content, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFDIR:
			fi.size, fi.nlink = 0, 0
		}
		out[rel] = fi
		return nil
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", root, err)
	}
	return out
}

func compareTrees(t *testing.T, got, want map[string]fileInfo) {
	t.Helper()
	bad := 0
	keys := mapsKeys(want)
	slices.Sort(keys)
	for _, p := range keys {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing from the mount", p)
		} else if g != want[p] {
			t.Errorf("%s:\n mount %v\n want  %v", p, g, want[p])
		} else {
			continue
		}
		if bad++; bad > 20 {
			t.Fatal("too many differences")
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in the mount only", p)
		}
	}
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMountBusybox: the mounted image is the image's merged rootfs, file
// for file.
func TestMountBusybox(t *testing.T) {
	skipMounts(t)
	d, host, _ := runDaemon(t, t.TempDir())
	id := loadBusybox(t, host)
	want := t.TempDir()
	testdata.BusyboxRootfs(t, want)
	target := filepath.Join(t.TempDir(), "not", "yet", "there")
	m := mountT(t, d, MountSpec{Image: id, Target: target})
	if !m.ReadOnly() || m.Target != target || m.Image != id {
		t.Errorf("mount %+v", m)
	}
	wantTree := readTree(t, want)
	if len(wantTree) < 300 || wantTree["bin/sh"].nlink < 100 {
		t.Fatalf("the reference rootfs looks wrong: %d paths, bin/sh %v", len(wantTree), wantTree["bin/sh"])
	}
	compareTrees(t, readTree(t, target), wantTree)
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to a read-only mount: %v, want EROFS", err)
	}
	if ch, err := m.Changes(); err != nil || len(ch) != 0 {
		t.Errorf("changes of a read-only mount: %v, %v", ch, err)
	}
	if got := d.Mounts(); len(got) != 1 || got[0] != m {
		t.Errorf("Mounts() = %v", got)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(); err != nil {
		t.Errorf("second unmount: %v", err)
	}
	if ents, err := os.ReadDir(target); err != nil || len(ents) != 0 {
		t.Errorf("after unmount the target holds %d entries, %v", len(ents), err)
	}
	if len(d.Mounts()) != 0 {
		t.Errorf("mounts after unmount: %v", d.Mounts())
	}
}

// TestMountErrors: an unknown image, a busy dir, a relative path.
func TestMountErrors(t *testing.T) {
	skipMounts(t)
	d, host, _ := runDaemon(t, t.TempDir())
	id := loadBusybox(t, host)
	ctx := context.Background()
	target := t.TempDir()
	mountT(t, d, MountSpec{Image: id, Target: target})
	for _, tc := range []struct {
		name string
		spec MountSpec
		want error
		text string
	}{
		{"unknown image", MountSpec{Image: digest.FromString("nope"), Target: t.TempDir()}, ErrNotFound, "No such image: sha256:"},
		{"busy (ours)", MountSpec{Image: id, Target: target}, layerfs.ErrBusy, "is busy"},
		{"relative", MountSpec{Image: id, Target: "rel/dir"}, ErrBadParameter, "not an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Mount(ctx, tc.spec)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
	// a dir someone else mounted
	other := t.TempDir()
	if err := unix.Mount("tmpfs", other, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(other, unix.MNT_DETACH)
	if _, err := d.Mount(ctx, MountSpec{Image: id, Target: other}); !errors.Is(err, layerfs.ErrBusy) || !errors.Is(err, ErrConflict) {
		t.Errorf("mount on a tmpfs mount point: %v, want busy", err)
	}
	if len(d.Mounts()) != 1 {
		t.Errorf("failed mounts left records: %v", d.Mounts())
	}
	if _, err := d.MountAt(t.TempDir()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "No such mount") {
		t.Errorf("MountAt of a plain dir: %v", err)
	}
}

// TestMountWritable: changes go to the state dir, the journal lists them,
// and a new daemon on the same root mounts the same state again with every
// file.
func TestMountWritable(t *testing.T) {
	skipMounts(t)
	root := t.TempDir()
	d, host, stop := runDaemon(t, root)
	id := loadBusybox(t, host)
	state := filepath.Join(t.TempDir(), "state")
	target := t.TempDir()
	m, err := d.Mount(context.Background(), MountSpec{Image: id, Target: target, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if m.ReadOnly() || m.Upper != filepath.Join(state, "upper") || m.Work != filepath.Join(state, "work") {
		t.Errorf("mount %+v", m)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(target, "tmp/hello.txt"), []byte("hello"), 0o644))
	must(os.Remove(filepath.Join(target, "srv/keep.txt")))
	must(os.Mkdir(filepath.Join(target, "newdir"), 0o755))
	must(os.WriteFile(filepath.Join(target, "etc/motd"), []byte("changed\n"), 0o644))
	want := []layerfs.Change{
		{Path: "/etc", Kind: layerfs.ChangeModify},
		{Path: "/etc/motd", Kind: layerfs.ChangeModify},
		{Path: "/newdir", Kind: layerfs.ChangeAdd},
		{Path: "/srv", Kind: layerfs.ChangeModify},
		{Path: "/srv/keep.txt", Kind: layerfs.ChangeDelete},
		{Path: "/tmp", Kind: layerfs.ChangeModify},
		{Path: "/tmp/hello.txt", Kind: layerfs.ChangeAdd},
	}
	got, err := m.Changes()
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("changes %v, %v\nwant %v", got, err, want)
	}
	// The daemon stops (unmounting everything); a new one mounts the state again.
	stop()
	if mountedAt(target) {
		t.Fatal("daemon close left the mount")
	}
	d2, _, _ := runDaemon(t, root)
	m2 := mountT(t, d2, MountSpec{Image: id, Target: target, StateDir: state})
	if b, err := os.ReadFile(filepath.Join(target, "tmp/hello.txt")); err != nil || string(b) != "hello" {
		t.Errorf("hello.txt after restart: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(target, "srv/keep.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted file after restart: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "etc/motd")); string(b) != "changed\n" {
		t.Errorf("motd after restart: %q", b)
	}
	if got, err := m2.Changes(); err != nil || !slices.Equal(got, want) {
		t.Errorf("changes after restart %v, %v\nwant %v", got, err, want)
	}
}

// TestMountMany: many mounts of one image at once, read in parallel.
func TestMountMany(t *testing.T) {
	skipMounts(t)
	d, host, _ := runDaemon(t, t.TempDir())
	id := loadBusybox(t, host)
	const n = 12
	var wg sync.WaitGroup
	mounts := make([]*ImageMount, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec := MountSpec{Image: id, Target: t.TempDir()}
			if i%2 == 1 {
				spec.StateDir = t.TempDir()
			}
			mounts[i], errs[i] = d.Mount(context.Background(), spec)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("mount %d: %v", i, err)
		}
		t.Cleanup(func() { mounts[i].Unmount() })
	}
	for i, m := range mounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := os.ReadFile(filepath.Join(m.Target, testdata.BusyboxIndex))
			if err != nil || string(b) != testdata.BusyboxIndexContent {
				t.Errorf("mount %d: index %q, %v", i, b, err)
			}
			if !m.ReadOnly() {
				if err := os.WriteFile(filepath.Join(m.Target, "tmp/mine"), []byte(fmt.Sprint(i)), 0o644); err != nil {
					t.Errorf("mount %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	for i, m := range mounts {
		_, err := os.Stat(filepath.Join(m.Target, "tmp/mine"))
		if m.ReadOnly() != errors.Is(err, os.ErrNotExist) {
			t.Errorf("mount %d (read-only %v): tmp/mine: %v; writes leaked between mounts", i, m.ReadOnly(), err)
		}
	}
	if len(d.Mounts()) != n {
		t.Errorf("%d mounts listed, want %d", len(d.Mounts()), n)
	}
}

// TestMountedImageKept: rmi refuses a mounted image; forced, it only
// untags it, and the mount keeps working.
func TestMountedImageKept(t *testing.T) {
	skipMounts(t)
	d, host, _ := runDaemon(t, t.TempDir())
	id := loadBusybox(t, host)
	ctx := context.Background()
	m := mountT(t, d, MountSpec{Image: id, Target: t.TempDir()})
	_, err := d.RemoveImage(ctx, "busybox", false)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "is mounted at "+m.Target) {
		t.Errorf("rmi busybox: %v, want conflict naming the mount", err)
	}
	_, err = d.RemoveImage(ctx, id.String(), false)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "(must be forced) - image is mounted at") {
		t.Errorf("rmi by id: %v, want conflict", err)
	}
	if _, err := d.RemoveImage(ctx, id.String(), true); err != nil {
		t.Fatalf("rmi -f: %v", err)
	}
	if _, err := d.store.Image(ctx, id); err != nil {
		t.Errorf("image of a mounted image gone after rmi -f: %v", err)
	}
	// Every byte still served, object files included.
	b, err := os.ReadFile(filepath.Join(m.Target, "bin/busybox"))
	if err != nil || len(b) < 100000 {
		t.Errorf("busybox binary after rmi -f: %d bytes, %v", len(b), err)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.RemoveImage(ctx, id.String(), false); err != nil {
		t.Errorf("rmi after unmount: %v", err)
	}
}

// TestMountCorruptObject: a flipped byte in an object file gives EIO and
// a log line, never wrong bytes.
func TestMountCorruptObject(t *testing.T) {
	skipMounts(t)
	root := t.TempDir()
	var logs syncBuf
	host := "unix://" + filepath.Join(root, "fusebox.sock")
	d, err := New(context.Background(), Config{Root: root, Host: host, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(filepath.Join(root, "fusebox.sock")); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	id := loadBusybox(t, host)
	target := t.TempDir()
	m := mountT(t, d, MountSpec{Image: id, Target: target})
	binary, err := os.ReadFile(testdata.BusyboxBinary)
	if err != nil {
		t.Fatal(err)
	}
	obj, ok := d.store.ObjectPath(digest.FromBytes(binary))
	if !ok {
		t.Fatal("busybox binary has no object file")
	}
	f, err := os.OpenFile(obj, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	one := []byte{0}
	f.ReadAt(one, 4096)
	one[0] ^= 0xff
	f.WriteAt(one, 4096)
	f.Close()
	for _, p := range []string{"bin/busybox", "bin/sh"} {
		b, err := os.ReadFile(filepath.Join(target, p))
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("read %s of a corrupt object: %d bytes, %v; want EIO", p, len(b), err)
		}
	}
	if !strings.Contains(logs.String(), "digest mismatch") {
		t.Errorf("no log line names the corrupt object:\n%s", logs.String())
	}
	if b, err := os.ReadFile(filepath.Join(target, testdata.BusyboxIndex)); err != nil || !bytes.Equal(b, []byte(testdata.BusyboxIndexContent)) {
		t.Errorf("intact file: %q, %v", b, err)
	}
	_ = m
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStaleMountsCleaned: a mount a dead daemon left from this root is
// unmounted when a new daemon starts on the root; a mount of another root
// is left alone.
func TestStaleMountsCleaned(t *testing.T) {
	skipMounts(t)
	root := t.TempDir()
	lower := t.TempDir()
	if err := os.WriteFile(filepath.Join(lower, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := layerfs.NewDirSource(lower)
	if err != nil {
		t.Fatal(err)
	}
	mount := func(fsName string) (string, *layerfs.Server) {
		dir := filepath.Join(t.TempDir(), "a dir with spaces")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		srv, err := layerfs.Mount(context.Background(), dir, layerfs.MountOptions{Lowers: []layerfs.Source{src}, FsName: fsName})
		if err != nil {
			t.Fatal(err)
		}
		return dir, srv
	}
	stale, staleSrv := mount("fusebox@" + root)
	other, otherSrv := mount("fusebox@/some/other/root")
	defer otherSrv.Unmount()
	d, _, _ := runDaemon(t, root)
	_ = d
	if mountedAt(stale) {
		t.Error("the stale mount of this root is still mounted")
	}
	waited := make(chan struct{})
	go func() { staleSrv.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Error("the stale mount's server never saw the unmount")
	}
	if !mountedAt(other) {
		t.Error("another root's mount was unmounted")
	}
}

// TestMountUnmountedOutside: `umount DIR` by hand ends the mount in the
// daemon too: the record goes and the image can be removed.
func TestMountUnmountedOutside(t *testing.T) {
	skipMounts(t)
	d, host, _ := runDaemon(t, t.TempDir())
	id := loadBusybox(t, host)
	m := mountT(t, d, MountSpec{Image: id, Target: t.TempDir(), StateDir: t.TempDir()})
	if err := unix.Unmount(m.Target, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; len(d.Mounts()) > 0; i++ {
		if i > 500 {
			t.Fatal("the daemon still lists a mount unmounted from outside")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := d.RemoveImage(context.Background(), "busybox", false); err != nil {
		t.Errorf("rmi after the mount went: %v", err)
	}
	if err := m.Unmount(); err != nil {
		t.Errorf("Unmount after an outside unmount: %v", err)
	}
}
