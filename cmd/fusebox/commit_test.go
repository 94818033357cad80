package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fusebox/fusebox/testdata"
)

// changesEnv is a daemon with the busybox test image, where containers
// can run; it skips until the branch has the container start path.
func changesEnv(t *testing.T) (*env, *testdata.Image) {
	t.Helper()
	needContainers(t)
	img := testdata.Busybox(t)
	e := newEnv(t)
	e.ok("load", "-i", img.DockerArchive)
	if _, errOut, code := e.fusebox("run", "--rm", "busybox", "true"); code != 0 {
		if strings.Contains(errOut, "page not found") {
			t.Skip("containers can't be started on this branch yet (no /containers/{id}/start)")
		}
		t.Fatalf("run busybox true: exit %d: %s", code, errOut)
	}
	return e, img
}

// cli is the fusebox CLI or the docker CLI on one daemon.
type cli struct {
	name string
	run  func(e *env, stdin []byte, args ...string) (string, string, int)
}

var clis = []cli{
	{"fusebox", func(e *env, in []byte, args ...string) (string, string, int) { return e.fuseboxIn(in, args...) }},
	{"docker", func(e *env, in []byte, args ...string) (string, string, int) { return e.dockerIn(in, args...) }},
}

func (c cli) ok(e *env, args ...string) string {
	e.t.Helper()
	return c.okIn(e, nil, args...)
}

func (c cli) okIn(e *env, in []byte, args ...string) string {
	e.t.Helper()
	out, errOut, code := c.run(e, in, args...)
	if code != 0 {
		e.t.Fatalf("%s %v: exit %d\n%s%s", c.name, args, code, out, errOut)
	}
	return out
}

// tarNames lists a tar stream's entries (without trailing slashes) and
// the bytes of its regular files.
func tarNames(t *testing.T, b []byte) ([]string, map[string]string, map[string]*tar.Header) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	files, hdrs := map[string]string{}, map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		names = append(names, name)
		hdrs[name] = h
		if h.Typeflag == tar.TypeReg {
			data, _ := io.ReadAll(tr)
			files[name] = string(data)
		}
	}
	slices.Sort(names)
	return names, files, hdrs
}

var idLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

// TestWalkthroughCommit is the walkthrough's core with both CLIs: a
// container writes /tmp/hello.txt, diff shows it, commit makes an untagged
// image, tag names it, history shows the 12 B layer with its comment on
// top of busybox, and a container of the new image reads the file.
func TestWalkthroughCommit(t *testing.T) {
	e, bb := changesEnv(t)
	for _, c := range clis {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "docker" {
				requireDocker(t)
			}
			e.t = t
			name := "hello_" + c.name
			c.ok(e, "run", "--name", name, "busybox", "sh", "-c", `echo "hello world" > /tmp/hello.txt`)
			if out := c.ok(e, "diff", name); out != "C /tmp\nA /tmp/hello.txt\n" {
				t.Fatalf("diff = %q", out)
			}
			id := c.ok(e, "commit", "-m", "Adding hello world", name)
			if !idLine.MatchString(id) {
				t.Fatalf("commit printed %q", id)
			}
			id = strings.TrimSpace(id)
			short := strings.TrimPrefix(id, "sha256:")[:12]
			if out := c.ok(e, "images", "--filter", "dangling=true", "-q"); !strings.Contains(out, short) {
				t.Errorf("untagged commit not listed as <none>: %q", out)
			}
			repo := "hello_docker_" + c.name
			c.ok(e, "tag", short, repo)
			hist := c.ok(e, "history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", repo)
			lines := strings.Split(strings.TrimSpace(hist), "\n")
			if want := short + `|sh -c echo "hello world" > /tmp/hello.txt|12B|Adding hello world`; lines[0] != want {
				t.Errorf("history top = %q, want %q", lines[0], want)
			}
			if len(lines) < 2 || !strings.HasPrefix(lines[1], bb.ID.Encoded()[:12]+"|") {
				t.Errorf("history below the commit: %q (want busybox %s)", lines, bb.ID.Encoded()[:12])
			}
			if out := c.ok(e, "run", "--rm", repo, "cat", "/tmp/hello.txt"); out != "hello world\n" {
				t.Errorf("the new image's /tmp/hello.txt = %q", out)
			}
		})
	}
}

// TestCommitLowerChanges commits a deleted lower file, a chmodded one, a
// replaced directory and a --change, over three generations.
func TestCommitLowerChanges(t *testing.T) {
	e, _ := changesEnv(t)
	e.ok("run", "--name", "g1", "busybox", "sh", "-c", "rm /etc/passwd && chmod 600 /etc/group && rm -r /srv && mkdir /srv && echo new > /srv/only")
	if out := e.ok("diff", "g1"); !strings.Contains(out, "D /etc/passwd\n") || !strings.Contains(out, "C /etc/group\n") {
		t.Fatalf("diff = %q", out)
	}
	e.ok("commit", "-c", "ENV GEN=1", "-a", "me", "g1", "gen:1")
	check := `test ! -e /etc/passwd && stat -c %a /etc/group && ls /srv && echo $GEN`
	if out := e.ok("run", "--rm", "gen:1", "sh", "-c", check); out != "600\nonly\n1\n" {
		t.Errorf("gen:1 sees %q", out)
	}
	// A renamed lower directory, a hard link and a symlink.
	e.ok("run", "--name", "g2", "gen:1", "sh", "-c", "echo two > /srv/two && chmod 644 /etc/group && mv /var/www /var/moved && ln /srv/two /srv/two.hard && ln -s two /srv/two.sym")
	e.ok("commit", "--change", "ENV GEN=2", "g2", "gen:2")
	e.ok("run", "--name", "g3", "gen:2", "sh", "-c", "rm /srv/only")
	e.ok("commit", "--change", "ENV GEN=3", "g3", "gen:3")
	check = `stat -c %a /etc/group; ls /srv; echo $GEN; test ! -e /etc/passwd && echo gone; test ! -e /var/www && cat /var/moved/index.html; stat -c %h /srv/two.hard; readlink /srv/two.sym`
	want := "644\ntwo\ntwo.hard\ntwo.sym\n3\ngone\n" + testdata.BusyboxIndexContent + "2\ntwo\n"
	if out := e.ok("run", "--rm", "gen:3", "sh", "-c", check); out != want {
		t.Errorf("gen:3 sees %q, want %q", out, want)
	}
	if out := e.ok("history", "-q", "gen:3"); len(strings.Fields(out)) < 6 {
		t.Errorf("history of three generations: %q", out)
	}
}

// TestExportAndCp: export of a container equals its view; cp both ways,
// with files, directories and tar streams, on a stopped and a running
// container, and the copies show in diff.
func TestExportAndCp(t *testing.T) {
	e, _ := changesEnv(t)
	e.ok("run", "--name", "xc", "busybox", "sh", "-c", "mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && ln -s a /data/link")
	out := e.ok("export", "xc")
	file := filepath.Join(t.TempDir(), "x.tar")
	e.ok("export", "-o", file, "xc")
	b, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(b, []byte(out)) {
		t.Fatalf("export -o differs from export to stdout (%v)", err)
	}
	names, files, _ := tarNames(t, b)
	// The container's own view, listed by the container.
	e.ok("commit", "xc", "xview")
	view := strings.Fields(e.ok("run", "--rm", "xview", "find", "/", "-xdev"))
	var viewNames []string
	for _, v := range view {
		if v != "/" {
			viewNames = append(viewNames, strings.TrimPrefix(v, "/"))
		}
	}
	slices.Sort(viewNames)
	if !reflect.DeepEqual(names, viewNames) {
		t.Errorf("export lists %d paths, the container sees %d\nexport-only: %q\nview-only: %q", len(names), len(viewNames), minus(names, viewNames), minus(viewNames, names))
	}
	if files["data/sub/b"] != "b\n" {
		t.Errorf("export's data/sub/b = %q", files["data/sub/b"])
	}

	host := t.TempDir()
	// Out: a file, a directory, a tar stream.
	e.ok("cp", "xc:/data/a", filepath.Join(host, "a.txt"))
	if got, _ := os.ReadFile(filepath.Join(host, "a.txt")); string(got) != "a\n" {
		t.Errorf("cp out a file: %q", got)
	}
	e.ok("cp", "xc:/data", filepath.Join(host, "data"))
	if got, _ := os.ReadFile(filepath.Join(host, "data/sub/b")); string(got) != "b\n" {
		t.Errorf("cp out a dir: %q", got)
	}
	if l, _ := os.Readlink(filepath.Join(host, "data/link")); l != "a" {
		t.Errorf("cp out a link: %q", l)
	}
	e.ok("cp", "-L", "xc:/data/link", filepath.Join(host, "followed"))
	if got, _ := os.ReadFile(filepath.Join(host, "followed")); string(got) != "a\n" {
		t.Errorf("cp -L: %q", got)
	}
	stream, _, _ := e.fusebox("cp", "xc:/data", "-")
	if names, _, _ := tarNames(t, []byte(stream)); !slices.Equal(names, []string{"data", "data/a", "data/link", "data/sub", "data/sub/b"}) {
		t.Errorf("cp out to -: %q", names)
	}

	// In: a file, a directory, a tar stream with -a.
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("in\n"), 0o640)
	os.Chown(filepath.Join(host, "in.txt"), 1000, 1000)
	e.ok("cp", filepath.Join(host, "in.txt"), "xc:/tmp/")
	e.ok("cp", "-a", filepath.Join(host, "in.txt"), "xc:/tmp/kept.txt")
	e.ok("cp", filepath.Join(host, "data"), "xc:/copied")
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "streamed.txt", Mode: 0o600, Size: 3, Uid: 1000, Gid: 1000})
	tw.Write([]byte("st\n"))
	tw.Close()
	e.fuseboxIn(in.Bytes(), "cp", "-", "xc:/tmp")
	diff := e.ok("diff", "xc")
	for _, want := range []string{"A /tmp/in.txt", "A /tmp/kept.txt", "A /tmp/streamed.txt", "A /copied", "A /copied/sub/b"} {
		if !strings.Contains(diff, want+"\n") {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	_, _, hdrs := tarNames(t, []byte(mustOut(e, "cp", "xc:/tmp", "-")))
	if h := hdrs["tmp/in.txt"]; h == nil || h.Uid != 0 || h.Mode&0o777 != 0o640 {
		t.Errorf("cp in without -a: %+v", h)
	}
	if h := hdrs["tmp/kept.txt"]; h == nil || h.Uid != 1000 {
		t.Errorf("cp -a in: %+v", h)
	}
	// A running container.
	e.ok("run", "-d", "--name", "live", "busybox", "sleep", "60")
	e.ok("cp", filepath.Join(host, "in.txt"), "live:/in.txt")
	if out := e.ok("exec", "live", "cat", "/in.txt"); out != "in\n" {
		t.Errorf("cp into a running container: %q", out)
	}
	if out := e.ok("diff", "live"); !strings.Contains(out, "A /in.txt\n") {
		t.Errorf("diff of the running container: %q", out)
	}
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	id := strings.TrimSpace(e.ok("commit", "live", "live:1"))
	if out := e.ok("inspect", "-f", "{{.State.Status}}", "live"); out != "running\n" {
		t.Errorf("after commit the container is %q", out)
	}
	// Paused during the commit, as Docker does it.
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	var got []string
	for _, a := range strings.Fields(e.ok("events", "--since", since, "--until", until, "--filter", "container=live", "--format", "{{.Action}}")) {
		if a == "pause" || a == "commit" || a == "unpause" {
			got = append(got, a)
		}
	}
	if want := []string{"pause", "commit", "unpause"}; !slices.Equal(got, want) {
		t.Errorf("events of the commit: %q, want %q", got, want)
	}
	if out := e.ok("run", "--rm", id, "cat", "/in.txt"); out != "in\n" {
		t.Errorf("commit of a running container: %q", out)
	}
	e.ok("rm", "-f", "live")
}

func mustOut(e *env, args ...string) string {
	e.t.Helper()
	return e.ok(args...)
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// TestCommitCpBadInput: each mistake is a one-line error with exit status
// 1 and leaves the images and the store as they were.
func TestCommitCpBadInput(t *testing.T) {
	e, _ := changesEnv(t)
	e.ok("run", "--name", "cc", "busybox", "true")
	e.ok("create", "--name", "gone", "busybox")
	e.ok("rm", "gone")
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("f\n"), 0o644)
	images := e.ok("images", "-a", "--no-trunc")
	store := storeFiles(t, e.root)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"commit", "gone", "x"}, "No such container: gone"},
		{[]string{"commit", "--change", "FROBNICATE 1", "cc", "x"}, "invalid change"},
		{[]string{"commit", "cc", "Bad Name:x"}, "invalid reference format"},
		{[]string{"commit", "cc", "x:bad/tag"}, "invalid reference format"},
		{[]string{"cp", "cc:/nope", host}, "Could not find the file /nope in container cc"},
		{[]string{"cp", filepath.Join(host, "f"), "cc:/nope/dir/"}, "destination directory cc:/nope/dir/ does not exist"},
		{[]string{"cp", filepath.Join(host, "f"), "cc:/nope/file"}, "Could not find the file /nope in container cc"},
		{[]string{"cp", filepath.Join(host, "missing"), "cc:/tmp"}, "no such file or directory"},
		{[]string{"cp", "gone:/etc", host}, "No such container: gone"},
	} {
		out, errOut, code := e.fusebox(tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("fusebox %q: exit %d, stderr %q (want %q), stdout %q", tc.args, code, errOut, tc.want, out)
		}
	}
	if after := e.ok("images", "-a", "--no-trunc"); after != images {
		t.Errorf("images changed:\n%s\n%s", images, after)
	}
	if after := storeFiles(t, e.root); !reflect.DeepEqual(after, store) {
		t.Errorf("store files changed: %q", minus(after, store))
	}
	// ../../ from the container's root stays inside it.
	e.ok("cp", filepath.Join(host, "f"), "cc:../../../../f-escaped")
	if out := e.ok("diff", "cc"); !strings.Contains(out, "A /f-escaped\n") {
		t.Errorf("cp to ../../: diff %q", out)
	}
	if _, err := os.Stat("/f-escaped"); err == nil {
		os.Remove("/f-escaped")
		t.Error("cp to ../../ wrote the host's /f-escaped")
	}
}

// storeFiles lists the files of the daemon's store (objects, blobs), not
// its database, whose files change with every read.
func storeFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		// Not the store: containers' state, mounts, and the network's
		// sandboxes, which change after an exit (spares, Retire).
		if de.IsDir() && (rel == "containers" || strings.HasSuffix(rel, "db") || rel == "mounts" || rel == "network") {
			return filepath.SkipDir
		}
		if !de.IsDir() && !strings.HasSuffix(p, ".log") && !strings.HasSuffix(p, ".sock") && !strings.HasSuffix(p, ".pid") && !strings.HasSuffix(p, ".lock") {
			out = append(out, rel)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// TestDockerCp is docker cp and docker export (the docker CLI's own
// stat-then-copy logic) on a fusebox container, stopped and running.
func TestDockerCp(t *testing.T) {
	requireDocker(t)
	e, _ := changesEnv(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("in\n"), 0o644)
	e.dockerOK("create", "--name", "dc", "busybox", "cat", "/tmp/in.txt")
	e.dockerOK("cp", filepath.Join(host, "in.txt"), "dc:/tmp/")
	if out := e.dockerOK("diff", "dc"); out != "C /tmp\nA /tmp/in.txt\n" {
		t.Errorf("docker diff after docker cp: %q", out)
	}
	if out := e.dockerOK("start", "-a", "dc"); out != "in\n" {
		t.Errorf("the container reads %q", out)
	}
	e.dockerOK("cp", "dc:/tmp/in.txt", filepath.Join(host, "out.txt"))
	if got, _ := os.ReadFile(filepath.Join(host, "out.txt")); string(got) != "in\n" {
		t.Errorf("docker cp out: %q", got)
	}
	e.dockerOK("cp", "dc:/etc", filepath.Join(host, "etc"))
	if _, err := os.Stat(filepath.Join(host, "etc/group")); err != nil {
		t.Errorf("docker cp of a dir: %v", err)
	}
	_, errOut, code := e.docker("cp", "dc:/nope", host)
	if code != 1 || !strings.Contains(errOut, "Could not find the file /nope in container dc") {
		t.Errorf("docker cp of a missing path: %d %q", code, errOut)
	}
	names, files, _ := tarNames(t, []byte(e.dockerOK("export", "dc")))
	if files["tmp/in.txt"] != "in\n" || !slices.Contains(names, "bin/sh") {
		t.Errorf("docker export: %d names, tmp/in.txt %q", len(names), files["tmp/in.txt"])
	}
	e.dockerOK("run", "-d", "--name", "dlive", "busybox", "sleep", "60")
	e.dockerOK("cp", filepath.Join(host, "in.txt"), "dlive:/in.txt")
	if out := e.dockerOK("exec", "dlive", "cat", "/in.txt"); out != "in\n" {
		t.Errorf("docker cp into a running container: %q", out)
	}
	e.dockerOK("commit", "-p=false", "dlive", "dlive:1")
	if out := e.dockerOK("run", "--rm", "dlive:1", "cat", "/in.txt"); out != "in\n" {
		t.Errorf("commit --pause=false: %q", out)
	}
	e.dockerOK("rm", "-f", "dlive")
}

// TestCommitProgressOnTerminal: on a terminal, commit of a big change
// draws a progress bar of the layer's bytes and still prints the image ID;
// off a terminal (every other test) it prints the ID alone. A bad --change
// fails before any stream starts, as an ordinary error.
func TestCommitProgressOnTerminal(t *testing.T) {
	e, _ := changesEnv(t)
	e.ok("run", "--name", "big", "busybox", "sh", "-c", "head -c 33554432 /dev/urandom > /big")
	cmd := e.fuseboxCmd("commit", "big", "bigger:v1")
	term := startPTY(t, cmd, &pty.Winsize{Rows: 30, Cols: 120})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("commit on a terminal: %v", err)
	}
	id := strings.TrimSpace(e.ok("image", "inspect", "-f", "{{.Id}}", "bigger:v1"))
	if s := term.drained(); !strings.Contains(s, "Committing layer") || !strings.Contains(s, "32.0 MiB") || !strings.Contains(s, id) {
		t.Errorf("commit on a terminal printed %q; want a bar of 32.0 MiB and %s", s, id)
	}
	cmd = e.fuseboxCmd("commit", "-c", "FROBNICATE 1", "big", "bad:v1")
	term = startPTY(t, cmd, nil)
	if err := cmd.Wait(); err == nil {
		t.Error("commit with a bad --change succeeded on a terminal")
	}
	if s := term.drained(); !strings.Contains(s, "invalid change") || strings.Contains(s, "Committing layer") {
		t.Errorf("bad --change on a terminal printed %q", s)
	}
}
