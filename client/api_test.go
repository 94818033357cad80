package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/testdata"
)

// binDir holds fusebox, fuseboxd and fusebox-shim built for these tests;
// empty when the build failed (the daemon tests then fail).
var binDir string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "fusebox-client-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		args := append(append([]string{"build"}, testenv.SeccompTags()...), "-o", dir+"/", "../cmd/fusebox", "../cmd/fuseboxd", "../cmd/fusebox-shim")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build fusebox: %v\n%s", err, out)
			return 1
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

// daemon starts a real daemon on a root of its own with Connect, as the
// CLI does, and returns a client for it; the daemon is stopped at the end.
func daemon(t *testing.T) *Client {
	t.Helper()
	testenv.RequireRoot(t, "the daemon mounts and runs containers")
	testenv.RequireFUSE(t, "the daemon serves images with FUSE")
	root := t.TempDir()
	host := "unix://" + filepath.Join(root, "fusebox.sock")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Connect(ctx, Options{Host: host, Root: root, Exe: filepath.Join(binDir, "fusebox")})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		stopDaemon(t, root)
	})
	return c
}

// stopDaemon sends SIGTERM to the daemon of root (by its pid file) and
// waits for it to exit.
func stopDaemon(t *testing.T, root string) {
	b, err := os.ReadFile(filepath.Join(root, "daemon.pid"))
	if err != nil {
		t.Errorf("daemon pid: %v", err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Errorf("daemon pid %q", b)
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 800 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Errorf("daemon %d did not stop on SIGTERM", pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// withBusybox loads the busybox test image and returns its name.
func withBusybox(t *testing.T, c *Client) string {
	t.Helper()
	img := testdata.Busybox(t)
	f, err := os.Open(img.DockerArchive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, err := c.ImageLoad(context.Background(), f, true)
	if err != nil {
		t.Fatalf("load busybox: %v", err)
	}
	if err := (JSONStream{rc}).Wait(context.Background()); err != nil {
		t.Fatalf("load busybox: %v", err)
	}
	return img.Name + ":" + img.Tag
}

// TestErrorAnswers checks that the daemon's error answers print as the
// docker CLI prints them and match errdefs' kinds by status.
func TestErrorAnswers(t *testing.T) {
	c := daemon(t)
	ctx := context.Background()
	if _, err := c.NetworkCreate(ctx, "dup", NetworkCreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, dupErr := c.NetworkCreate(ctx, "dup", NetworkCreateOptions{})
	_, inspectErr := c.ContainerInspect(ctx, "nope", ContainerInspectOptions{})
	_, statErr := c.ContainerStatPath(ctx, "nope", ContainerStatPathOptions{Path: "/"})
	_, imageErr := c.ImageInspectRaw(ctx, "nope:1")
	_, emptyErr := c.ContainerInspect(ctx, " ", ContainerInspectOptions{})
	for _, tt := range []struct {
		name string
		err  error
		is   func(error) bool
		text string // the whole message, or its start when it ends with "…"
	}{
		{"no such container", inspectErr, cerrdefs.IsNotFound, "Error response from daemon: No such container: nope"},
		{"no such image", imageErr, cerrdefs.IsNotFound, "Error response from daemon: No such image: nope:1"},
		{"duplicate network", dupErr, cerrdefs.IsConflict, "Error response from daemon: network with name dup already exists: network already exists"},
		// A HEAD answer has no body: the status is all there is.
		{"stat in no container", statErr, cerrdefs.IsNotFound, "request returned 404 Not Found for API route and version …"},
		{"empty name", emptyErr, cerrdefs.IsInvalidArgument, "invalid container name or ID: value is empty"},
	} {
		switch {
		case tt.err == nil:
			t.Errorf("%s: no error", tt.name)
		case !tt.is(tt.err):
			t.Errorf("%s: %v is not of the expected kind", tt.name, tt.err)
		case strings.HasSuffix(tt.text, "…") && !strings.HasPrefix(tt.err.Error(), strings.TrimSuffix(tt.text, "…")):
			t.Errorf("%s: %q, want %q", tt.name, tt.err, tt.text)
		case !strings.HasSuffix(tt.text, "…") && tt.err.Error() != tt.text:
			t.Errorf("%s: %q, want %q", tt.name, tt.err, tt.text)
		}
	}
}

// TestFilters checks that filters reach the daemon in its JSON form: a
// label filter picks one volume of two, a name filter one network.
func TestFilters(t *testing.T) {
	c := daemon(t)
	ctx := context.Background()
	for _, v := range []VolumeCreateOptions{
		{Name: "va", Labels: map[string]string{"color": "red"}},
		{Name: "vb", Labels: map[string]string{"color": "blue"}},
	} {
		if _, err := c.VolumeCreate(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	vols, err := c.VolumeList(ctx, VolumeListOptions{Filters: Filters{}.Add("label", "color=blue")})
	if err != nil {
		t.Fatal(err)
	}
	if len(vols.Items) != 1 || vols.Items[0].Name != "vb" {
		t.Errorf("volumes with color=blue: %+v", vols.Items)
	}
	for _, n := range []string{"front", "back"} {
		if _, err := c.NetworkCreate(ctx, n, NetworkCreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	nets, err := c.NetworkList(ctx, NetworkListOptions{Filters: Filters{}.Add("name", "front")})
	if err != nil {
		t.Fatal(err)
	}
	if len(nets.Items) != 1 || nets.Items[0].Name != "front" {
		t.Errorf("networks named front: %+v", nets.Items)
	}
}

// TestAttachStdin runs cat attached without tty: what is written to the
// hijacked connection comes back on stdout, the half-close ends cat's
// stdin, and the wait registered before start sees it exit 0.
func TestAttachStdin(t *testing.T) {
	c := daemon(t)
	ctx := context.Background()
	img := withBusybox(t, c)
	cfg := &container.Config{Image: img, Cmd: []string{"cat"}, OpenStdin: true, StdinOnce: true,
		AttachStdin: true, AttachStdout: true, AttachStderr: true}
	created, err := c.ContainerCreate(ctx, ContainerCreateOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	wait := c.ContainerWait(ctx, created.ID, ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	att, err := c.ContainerAttach(ctx, created.ID, ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	if _, err := c.ContainerStart(ctx, created.ID, ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(att.Conn, "hello through the hijack\n"); err != nil {
		t.Fatal(err)
	}
	if err := att.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello through the hijack\n" || errOut.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 {
			t.Errorf("exit status %d", res.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("no exit")
	}
}

// TestExecTTY runs an exec with a tty on a running container: the
// console size set at start is what the process sees, the output comes
// raw (no multiplexing), and the exit code is read back.
func TestExecTTY(t *testing.T) {
	c := daemon(t)
	ctx := context.Background()
	img := withBusybox(t, c)
	created, err := c.ContainerCreate(ctx, ContainerCreateOptions{Config: &container.Config{Image: img, Cmd: []string{"sleep", "60"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerStart(ctx, created.ID, ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	defer c.ContainerRemove(ctx, created.ID, ContainerRemoveOptions{Force: true})
	ex, err := c.ExecCreate(ctx, created.ID, ExecCreateOptions{TTY: true, AttachStdout: true, AttachStderr: true,
		Cmd: []string{"sh", "-c", "stty size; exit 3"}, ConsoleSize: ConsoleSize{Height: 33, Width: 101}})
	if err != nil {
		t.Fatal(err)
	}
	att, err := c.ExecAttach(ctx, ex.ID, ExecAttachOptions{TTY: true, ConsoleSize: ConsoleSize{Height: 33, Width: 101}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(att.Reader)
	att.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "33 101" {
		t.Errorf("stty size: %q", got)
	}
	var res ExecInspectResult
	for range 100 {
		if res, err = c.ExecInspect(ctx, ex.ID, ExecInspectOptions{}); err != nil || !res.Running {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || res.ExitCode != 3 {
		t.Errorf("exec inspect: %+v, %v", res, err)
	}
	if _, err := c.ExecCreate(ctx, created.ID, ExecCreateOptions{ConsoleSize: ConsoleSize{Height: 1, Width: 1}}); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("console size without tty: %v", err)
	}
}

// TestEvents sees a volume's creation on the event stream, and the stream
// ends with ctx's error when cancelled.
func TestEvents(t *testing.T) {
	c := daemon(t)
	ctx, cancel := context.WithCancel(context.Background())
	res := c.Events(ctx, EventsListOptions{Filters: Filters{}.Add("type", string(events.VolumeEventType))})
	if _, err := c.VolumeCreate(context.Background(), VolumeCreateOptions{Name: "seen"}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-res.Messages:
		if m.Type != events.VolumeEventType || m.Action != events.ActionCreate || m.Actor.ID != "seen" {
			t.Errorf("event %+v", m)
		}
	case err := <-res.Err:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	cancel()
	select {
	case err := <-res.Err:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not end")
	}
}

func TestAPITimestamp(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in, want string
		bad      bool
	}{
		{in: "10m", want: fmt.Sprint(now.Add(-10 * time.Minute).Unix())},
		{in: "1h30m", want: fmt.Sprint(now.Add(-90 * time.Minute).Unix())},
		{in: "1700000000", want: "1700000000"},
		{in: "1700000000.5", want: "1700000000.5"},
		{in: "0", want: "0"},
		{in: "2026-11-29", want: fmt.Sprintf("%d.000000000", time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC).Unix())},
		{in: "2026-11-29T10:20:30Z", want: fmt.Sprintf("%d.000000000", time.Date(2026, 11, 29, 10, 20, 30, 0, time.UTC).Unix())},
		{in: "2026-11-29T10:20:30.25+01:00", want: fmt.Sprintf("%d.250000000", time.Date(2026, 11, 29, 9, 20, 30, 0, time.UTC).Unix())},
		{in: "2026-11-29T10:20", want: fmt.Sprintf("%d.000000000", time.Date(2026, 11, 29, 10, 20, 0, 0, time.UTC).Unix())},
		{in: "2026-11-29T10", want: fmt.Sprintf("%d.000000000", time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC).Unix())},
		{in: "2026-13-01", bad: true},
		{in: "yesterday", bad: true},
		{in: "12.x", bad: true},
	} {
		got, err := apiTimestamp(tt.in, now)
		if tt.bad {
			if err == nil {
				t.Errorf("%q: %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
