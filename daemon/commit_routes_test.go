package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	moby "github.com/moby/moby/client"
)

// createCtr creates a container of image (never started) named name.
func createCtr(t *testing.T, c *moby.Client, image, name string, cmd ...string) string {
	t.Helper()
	res, err := c.ContainerCreate(context.Background(), moby.ContainerCreateOptions{
		Name: name, Config: &container.Config{Image: image, Cmd: cmd},
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return res.ID
}

// tarEntries reads a tar stream into name → content ("" for non-files)
// and name → header.
func tarEntries(t *testing.T, r io.Reader) (map[string]string, map[string]*tar.Header) {
	t.Helper()
	tr := tar.NewReader(r)
	files, hdrs := map[string]string{}, map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, hdrs
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		files[name], hdrs[name] = string(b), h
	}
}

// onRootfs runs fn on a (stopped) container's mounted rootfs: the test's
// stand-in for a process of the container changing files.
func onRootfs(t *testing.T, d *Daemon, name string, fn func(root string) error) {
	t.Helper()
	c, err := d.containers.get(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.withRootfs(context.Background(), c, func(m *ImageMount) error { return fn(m.Target) }); err != nil {
		t.Fatal(err)
	}
}

func diffLines(t *testing.T, c *moby.Client, name string) []string {
	t.Helper()
	res, err := c.ContainerDiff(context.Background(), name, moby.ContainerDiffOptions{})
	if err != nil {
		t.Fatalf("diff %s: %v", name, err)
	}
	var out []string
	for _, ch := range res.Changes {
		out = append(out, ch.Kind.String()+" "+ch.Path)
	}
	return out
}

// TestCommitStoppedContainer is the walkthrough on containers that never
// run: a file copied in shows in diff, is committed, and a container of
// the new image has it, with a lower file deleted and one chmodded.
func TestCommitStoppedContainer(t *testing.T) {
	skipMounts(t)
	root := t.TempDir()
	d, host, _ := runDaemon(t, root)
	busybox := loadBusybox(t, host)
	c := newClient(t, host)
	ctx := context.Background()

	createCtr(t, c, "busybox", "c1", "cat", "/tmp/hello.txt")
	if got := diffLines(t, c, "c1"); len(got) != 0 {
		t.Fatalf("diff of a new container = %q, want nothing", got)
	}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 12, Uid: 1000, Gid: 1000})
	tw.Write([]byte("hello world\n"))
	tw.Close()
	if _, err := c.CopyToContainer(ctx, "c1", moby.CopyToContainerOptions{DestinationPath: "/tmp", Content: &in}); err != nil {
		t.Fatalf("copy to c1: %v", err)
	}
	if got, want := diffLines(t, c, "c1"), []string{"C /tmp", "A /tmp/hello.txt"}; !slices.Equal(got, want) {
		t.Fatalf("diff = %q, want %q", got, want)
	}
	onRootfs(t, d, "c1", func(root string) error {
		if err := os.Remove(filepath.Join(root, "srv/data/a.txt")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Remove(filepath.Join(root, "etc/passwd")); err != nil {
			return err
		}
		return os.Chmod(filepath.Join(root, "etc/group"), 0o600)
	})
	if got := diffLines(t, c, "c1"); !slices.Contains(got, "D /etc/passwd") || !slices.Contains(got, "C /etc/group") {
		t.Fatalf("diff after delete and chmod = %q", got)
	}

	before := imageIDs(t, c)
	res, err := c.ContainerCommit(ctx, "c1", moby.ContainerCommitOptions{Reference: "hello_docker", Comment: "Adding hello world"})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if !strings.HasPrefix(res.ID, "sha256:") || slices.Contains(before, res.ID) {
		t.Fatalf("commit ID %q", res.ID)
	}
	hist, err := c.ImageHistory(ctx, "hello_docker")
	if err != nil {
		t.Fatal(err)
	}
	top := hist.Items[0]
	if top.ID != res.ID || top.Comment != "Adding hello world" || top.CreatedBy != "cat /tmp/hello.txt" {
		t.Errorf("history top = %+v", top)
	}
	if hist.Items[1].ID != busybox.String() {
		t.Errorf("history below the commit = %s, want busybox %s", hist.Items[1].ID, busybox)
	}
	// The layer holds hello.txt's 12 bytes and two whiteouts (no bytes)
	// and group's bytes (changed metadata carries the file).
	if top.Size <= 12 {
		t.Errorf("layer size %d", top.Size)
	}

	createCtr(t, c, "hello_docker", "c2")
	out, err := c.CopyFromContainer(ctx, "c2", moby.CopyFromContainerOptions{SourcePath: "/tmp/hello.txt"})
	if err != nil {
		t.Fatalf("copy from c2: %v", err)
	}
	files, hdrs := tarEntries(t, out.Content)
	out.Content.Close()
	if files["hello.txt"] != "hello world\n" || len(files) != 1 || hdrs["hello.txt"].Uid != 0 {
		t.Errorf("copied out %v (uid %d)", files, hdrs["hello.txt"].Uid)
	}
	_, err = c.CopyFromContainer(ctx, "c2", moby.CopyFromContainerOptions{SourcePath: "/etc/passwd"})
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "Could not find the file /etc/passwd in container c2") {
		t.Errorf("stat of the deleted file: %v", err)
	}
	st, err := c.ContainerStatPath(ctx, "c2", moby.ContainerStatPathOptions{Path: "/etc/group"})
	if err != nil || st.Stat.Mode.Perm() != 0o600 {
		t.Errorf("chmodded file: %+v, %v", st.Stat, err)
	}
	if got := diffLines(t, c, "c2"); len(got) != 0 {
		t.Errorf("diff of the new image's container = %q", got)
	}

	// export is the container's view.
	exp, err := c.ContainerExport(ctx, "c2", moby.ContainerExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exported, _ := tarEntries(t, exp)
	exp.Close()
	view := map[string]string{}
	onRootfs(t, d, "c2", func(root string) error {
		return filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
			if err != nil || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			view[rel] = ""
			if de.Type().IsRegular() {
				b, err := os.ReadFile(p)
				view[rel] = string(b)
				return err
			}
			return nil
		})
	})
	if !reflect.DeepEqual(slices.Sorted(maps.Keys(exported)), slices.Sorted(maps.Keys(view))) {
		t.Errorf("export lists %d paths, the view %d", len(exported), len(view))
	}
	if exported["tmp/hello.txt"] != "hello world\n" {
		t.Errorf("export's hello.txt = %q", exported["tmp/hello.txt"])
	}
	if _, ok := exported["etc/passwd"]; ok {
		t.Error("export has the deleted file")
	}
}

func imageIDs(t *testing.T, c *moby.Client) []string {
	t.Helper()
	res, err := c.ImageList(context.Background(), moby.ImageListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, im := range res.Items {
		ids = append(ids, im.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestCopyStaysInside copies to and from paths that try to leave the
// rootfs: "../../" and a symlink to "/" both stay inside it.
func TestCopyStaysInside(t *testing.T) {
	skipMounts(t)
	root := t.TempDir()
	d, host, _ := runDaemon(t, root)
	loadBusybox(t, host)
	c := newClient(t, host)
	ctx := context.Background()
	id := createCtr(t, c, "busybox", "c1")
	onRootfs(t, d, "c1", func(root string) error { return os.Symlink("../../../..", filepath.Join(root, "tmp/up")) })

	for _, dest := range []string{"../../", "/tmp/up", "tmp/up/../.."} {
		var in bytes.Buffer
		tw := tar.NewWriter(&in)
		tw.WriteHeader(&tar.Header{Name: "escape.txt", Mode: 0o644, Size: 3})
		tw.Write([]byte("in\n"))
		tw.WriteHeader(&tar.Header{Name: "../../../dotdot.txt", Mode: 0o644, Size: 3})
		tw.Write([]byte("in\n"))
		tw.Close()
		if _, err := c.CopyToContainer(ctx, "c1", moby.CopyToContainerOptions{DestinationPath: dest, Content: &in}); err != nil {
			t.Fatalf("copy to %s: %v", dest, err)
		}
	}
	for _, p := range []string{filepath.Join(root, ContainersDir, "escape.txt"), filepath.Join(root, "escape.txt"), "/escape.txt", "/dotdot.txt",
		filepath.Join(root, ContainersDir, id, "escape.txt")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s written outside the container", p)
		}
	}
	got := diffLines(t, c, "c1")
	for _, want := range []string{"A /escape.txt", "A /dotdot.txt", "A /tmp/up"} {
		if !slices.Contains(got, want) {
			t.Errorf("diff %q lacks %q", got, want)
		}
	}
	out, err := c.CopyFromContainer(ctx, "c1", moby.CopyFromContainerOptions{SourcePath: "/tmp/up/../../etc/hostname"})
	if err == nil {
		out.Content.Close()
	}
	// /tmp/up resolves to / inside: the path is /etc/hostname of the image,
	// or missing; never the host's.
	// A host file that the image doesn't have.
	marker := filepath.Join(root, "marker")
	if err := os.WriteFile(marker, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = c.ContainerStatPath(ctx, "c1", moby.ContainerStatPathOptions{Path: "/tmp/up/../../../.." + marker})
	if !cerrdefs.IsNotFound(err) {
		t.Errorf("host's %s seen through the container: %v", marker, err)
	}
	st, err := c.ContainerStatPath(ctx, "c1", moby.ContainerStatPathOptions{Path: "/tmp/up"})
	if err != nil || st.Stat.LinkTarget != "/" {
		t.Errorf("stat of a link out: %+v %v", st.Stat, err)
	}
}

// TestCommitBadInput: each bad request fails with a clear error and
// leaves the store as it was.
func TestCommitBadInput(t *testing.T) {
	skipMounts(t)
	root := t.TempDir()
	d, host, _ := runDaemon(t, root)
	loadBusybox(t, host)
	c := newClient(t, host)
	ctx := context.Background()
	createCtr(t, c, "busybox", "c1")
	createCtr(t, c, "busybox", "gone")
	if _, err := c.ContainerRemove(ctx, "gone", moby.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.Close()
	if _, err := c.CopyToContainer(ctx, "c1", moby.CopyToContainerOptions{DestinationPath: "/", Content: &in}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, d)
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"removed container", func() error {
			_, err := c.ContainerCommit(ctx, "gone", moby.ContainerCommitOptions{Reference: "x"})
			return err
		}, "No such container: gone"},
		{"bad change", func() error {
			_, err := c.ContainerCommit(ctx, "c1", moby.ContainerCommitOptions{Reference: "x", Changes: []string{"FROBNICATE x"}})
			return err
		}, "invalid change"},
		{"missing path", func() error {
			_, err := c.CopyFromContainer(ctx, "c1", moby.CopyFromContainerOptions{SourcePath: "/nope"})
			return err
		}, "Could not find the file /nope in container c1"},
		{"copy into a missing dir", func() error {
			_, err := c.CopyToContainer(ctx, "c1", moby.CopyToContainerOptions{DestinationPath: "/nope/x", Content: bytes.NewReader(nil)})
			return err
		}, "Could not find the file /nope/x in container c1"},
		{"copy into a file", func() error {
			_, err := c.CopyToContainer(ctx, "c1", moby.CopyToContainerOptions{DestinationPath: "/f", Content: bytes.NewReader(nil)})
			return err
		}, "extraction point is not a directory"},
	} {
		err := tc.call()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// A tag with invalid characters, sent raw (the moby client checks
	// references itself before sending).
	resp := rawPost(t, host, "/commit?container=c1&repo=Bad%20Name&tag=x")
	if resp.code != 400 || !strings.Contains(resp.body, "invalid reference format") {
		t.Errorf("bad repo: %d %s", resp.code, resp.body)
	}
	if after := snapshot(t, d); !reflect.DeepEqual(before, after) {
		t.Errorf("store changed by failed requests")
	}
}

type rawResponse struct {
	code int
	body string
}

// rawPost posts to the daemon's socket without the moby client's checks.
func rawPost(t *testing.T, host, path string) rawResponse {
	t.Helper()
	sock := strings.TrimPrefix(host, "unix://")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Post("http://fusebox"+path, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResponse{resp.StatusCode, string(b)}
}

// TestCommittedImageUnpacks saves a committed image through the API and
// hands it to independent tools: skopeo inspects the archive and copies
// it to an OCI layout, umoci unpacks it applying the whiteouts; the result
// equals what a container of the committed image sees.
func TestCommittedImageUnpacks(t *testing.T) {
	skipMounts(t)
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	root := t.TempDir()
	d, host, _ := runDaemon(t, root)
	loadBusybox(t, host)
	c := newClient(t, host)
	ctx := context.Background()
	createCtr(t, c, "busybox", "src")
	onRootfs(t, d, "src", func(root string) error {
		for _, step := range []func() error{
			func() error {
				return os.WriteFile(filepath.Join(root, "tmp/hello.txt"), []byte("hello world\n"), 0o644)
			},
			func() error { return os.Remove(filepath.Join(root, "etc/passwd")) },
			func() error { return os.Chmod(filepath.Join(root, "etc/group"), 0o600) },
			func() error { return os.Rename(filepath.Join(root, "var/www"), filepath.Join(root, "var/moved")) },
			func() error { return os.RemoveAll(filepath.Join(root, "srv")) },
			func() error { return os.MkdirAll(filepath.Join(root, "srv/again"), 0o750) },
			func() error {
				return os.Link(filepath.Join(root, "tmp/hello.txt"), filepath.Join(root, "tmp/hard.txt"))
			},
			func() error { return os.Symlink("hello.txt", filepath.Join(root, "tmp/sym")) },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	if _, err := c.ContainerCommit(ctx, "src", moby.ContainerCommitOptions{Reference: "unpacked:1"}); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	archive := filepath.Join(work, "image.tar")
	res, err := c.ImageSave(ctx, []string{"unpacked:1"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, res); err != nil {
		t.Fatal(err)
	}
	res.Close()
	f.Close()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	layout, bundle := filepath.Join(work, "oci"), filepath.Join(work, "bundle")
	run("skopeo", "inspect", "docker-archive:"+archive)
	run("skopeo", "copy", "docker-archive:"+archive, "oci:"+layout+":committed")
	run("umoci", "unpack", "--image", layout+":committed", bundle)

	createCtr(t, c, "unpacked:1", "view")
	var view map[string]fileInfo
	onRootfs(t, d, "view", func(root string) error { view = readTree(t, root); return nil })
	compareTrees(t, readTree(t, filepath.Join(bundle, "rootfs")), view)
	if got := view["tmp/hello.txt"]; got.content != "hello world\n" || got.nlink != 2 {
		t.Errorf("hello.txt in the new image: %+v", got)
	}
}

// TestStoppedDiffMountsNothing: a stopped container's diff comes from its
// journal, its upper dir and the image's indexes, with Docker's lines, and
// neither the mount manager nor the kernel gains a mount meanwhile: a
// renamed lower dir (listed from the image), a new dir with contents, a
// delete in a lower dir.
func TestStoppedDiffMountsNothing(t *testing.T) {
	skipMounts(t)
	root := t.TempDir()
	d, host, _ := runDaemon(t, root)
	loadBusybox(t, host)
	c := newClient(t, host)
	createCtr(t, c, "busybox", "s1", "true")
	onRootfs(t, d, "s1", func(root string) error {
		if err := os.Rename(filepath.Join(root, "srv/data"), filepath.Join(root, "srv/moved")); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(root, "srv/moved/b.txt")); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(root, "opt/new/deep"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, "opt/new/deep/f"), []byte("f"), 0o644); err != nil {
			return err
		}
		return os.Remove(filepath.Join(root, "etc/motd"))
	})
	// The kernel's mounts under this daemon's root: other packages' tests
	// mount and unmount elsewhere meanwhile.
	kernel := func() int {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], root) {
				n++
			}
		}
		return n
	}
	before, managed := kernel(), len(d.Mounts())
	got := diffLines(t, c, "s1")
	if after := kernel(); after != before || len(d.Mounts()) != managed {
		t.Errorf("diff of a stopped container mounted something: %d kernel mounts before, %d after; %d managed before, %d after",
			before, after, managed, len(d.Mounts()))
	}
	want := []string{
		"C /etc", "D /etc/motd",
		"A /opt", "A /opt/new", "A /opt/new/deep", "A /opt/new/deep/f",
		"C /srv", "D /srv/data", "A /srv/moved", "A /srv/moved/a-hardlink.txt", "A /srv/moved/a.txt", "A /srv/moved/link-to-a",
	}
	if !slices.Equal(got, want) {
		t.Errorf("diff = %q\nwant %q", got, want)
	}
}
