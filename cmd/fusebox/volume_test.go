package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// volumeNames lists the daemon's volumes, as `volume ls -q` prints them.
func volumeNames(e *env) []string { return strings.Fields(e.ok("volume", "ls", "-q")) }

func TestNamedVolumes(t *testing.T) {
	e := withBusybox(t)
	if out := e.ok("volume", "create", "data"); out != "data\n" {
		t.Errorf("volume create: %q", out)
	}
	// Creating it again is no error and changes nothing, as in Docker.
	e.ok("volume", "create", "--label", "x=1", "data")

	// Data outlives the container that wrote it.
	e.ok("run", "--name", "writer", "-v", "data:/data", "busybox", "sh", "-c", "echo hello > /data/f")
	e.ok("rm", "-v", "writer") // -v removes anonymous volumes only
	if out := e.ok("run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"); out != "hello\n" {
		t.Errorf("second container reads %q", out)
	}
	// A named volume that doesn't exist is made on first use.
	e.ok("run", "--rm", "-v", "fresh:/fresh", "busybox", "true")

	if out := e.ok("volume", "ls"); out != "DRIVER    VOLUME NAME\nlocal     data\nlocal     fresh\n" {
		t.Errorf("volume ls:\n%s", out)
	}
	if out := e.ok("volume", "ls", "-f", "name=fre", "--format", "{{.Name}} {{.Driver}}"); out != "fresh local\n" {
		t.Errorf("volume ls -f name=fre: %q", out)
	}
	mp := strings.TrimSpace(e.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "data"))
	if want := filepath.Join(e.root, "volumes", "data", "_data"); mp != want {
		t.Errorf("mountpoint %q, want %q", mp, want)
	}
	if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "hello\n" {
		t.Errorf("volume file on the host: %q, %v", b, err)
	}

	// A volume in use, even by a stopped container, can't be removed.
	e.ok("create", "--name", "user", "-v", "data:/data", "busybox", "true")
	for _, f := range []string{"volume=data", "volume=/data"} {
		if out := e.ok("ps", "-a", "--format", "{{.Names}}", "-f", f); out != "user\n" {
			t.Errorf("ps -f %s: %q", f, out)
		}
	}
	if out := e.ok("ps", "-a", "-q", "-f", "volume=fresh"); out != "" {
		t.Errorf("ps -f volume=fresh: %q", out)
	}
	if out := e.ok("volume", "ls", "-q", "-f", "dangling=true"); out != "fresh\n" {
		t.Errorf("dangling volumes: %q", out)
	}
	// The daemon counts the users again after a restart.
	e.stopDaemon()
	_, errOut, code := e.fusebox("volume", "rm", "data")
	if code != 1 || !strings.Contains(errOut, "remove data: volume is in use - [") {
		t.Errorf("volume rm of a volume in use: exit %d, %q", code, errOut)
	}
	if df := e.ok("system", "df", "--format", "{{.Type}}: {{.TotalCount}} {{.Active}}"); !strings.Contains(df, "Local Volumes: 2 1\n") {
		t.Errorf("system df:\n%s", df)
	}
	inspect := e.ok("inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Source}} {{.Destination}} {{.Driver}} {{.RW}}{{end}}", "user")
	if want := "volume data " + mp + " /data local true\n"; inspect != want {
		t.Errorf("inspect Mounts: %q, want %q", inspect, want)
	}
	e.ok("rm", "user")
	e.ok("volume", "rm", "data", "fresh")
	if v := volumeNames(e); len(v) != 0 {
		t.Errorf("volumes left: %v", v)
	}
	e.fail(1, "get data: no such volume", "volume", "inspect", "data")
	e.fail(1, "get data: no such volume", "volume", "rm", "data")
	e.ok("volume", "rm", "-f", "data")
	if _, err := os.Stat(filepath.Dir(mp)); !os.IsNotExist(err) {
		t.Errorf("removed volume's directory: %v", err)
	}
}

func TestVolumeSeededFromImage(t *testing.T) {
	e := withBusybox(t)
	e.ok("run", "--name", "mk", "busybox", "sh", "-c",
		"mkdir -p /app/sub && echo seed > /app/s && chmod 0750 /app && chown 5:6 /app/s && ln -s s /app/link && mkfifo /app/fifo && ln /app/s /app/hard")
	e.ok("commit", "mk", "app:1")
	check := "stat -c '%a %u:%g' /app; stat -c '%u:%g' /app/s; cat /app/s; readlink /app/link; stat -c %F /app/fifo; stat -c %h /app/hard; ls /app/sub"
	want := "750 0:0\n5:6\nseed\ns\nfifo\n2\n"
	if out := e.ok("run", "--rm", "-v", "appvol:/app", "app:1", "sh", "-c", check); out != want {
		t.Errorf("new named volume seen in the container:\n%s\nwant\n%s", out, want)
	}
	// An anonymous volume is seeded too; a volume with data is not.
	if out := e.ok("run", "--rm", "-v", "/app", "app:1", "cat", "/app/s"); out != "seed\n" {
		t.Errorf("anonymous volume: %q", out)
	}
	e.ok("run", "--rm", "-v", "appvol:/app", "app:1", "sh", "-c", "echo mine > /app/s")
	if out := e.ok("run", "--rm", "-v", "appvol:/app", "app:1", "cat", "/app/s"); out != "mine\n" {
		t.Errorf("a used volume was seeded again: %q", out)
	}
	// nocopy leaves a new volume empty.
	if out := e.ok("run", "--rm", "-v", "empty:/app:nocopy", "app:1", "ls", "-A", "/app"); out != "" {
		t.Errorf("nocopy volume holds %q", out)
	}
	// The --rm runs took their anonymous volumes with them.
	if v := strings.Join(volumeNames(e), " "); v != "appvol empty" {
		t.Errorf("volumes: %q", v)
	}
}

func TestVolumeDriverOptions(t *testing.T) {
	e := withBusybox(t)
	e.ok("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m,noexec", "tv")
	if out := e.ok("volume", "inspect", "-f", "{{.Options.type}} {{.Options.o}}", "tv"); out != "tmpfs size=1m,noexec\n" {
		t.Errorf("volume inspect options: %q", out)
	}
	mounted := func() bool {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		return strings.Contains(string(b), filepath.Join(e.root, "volumes"))
	}
	check := "grep ' /t ' /proc/mounts | cut -d' ' -f1-4; ls /t; echo x > /t/f"
	for range 2 { // a tmpfs volume starts empty at each first mount
		out := e.ok("run", "--rm", "-v", "tv:/t", "busybox", "sh", "-c", check)
		if !strings.HasPrefix(out, "tmpfs /t tmpfs rw,noexec,relatime,size=1024k") || strings.Contains(out, "\nf\n") {
			t.Errorf("tmpfs volume:\n%s", out)
		}
		if mounted() {
			t.Error("the volume's filesystem stayed mounted after its container ended")
		}
	}
	out := e.ok("run", "--rm", "--mount", "type=volume,src=tv2,dst=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs", "busybox", "sh", "-c", check)
	if !strings.HasPrefix(out, "tmpfs /t tmpfs") {
		t.Errorf("--mount volume-opt:\n%s", out)
	}
	e.fail(125, `create tv3: missing required option: "device"`, "run", "--rm", "--mount", "type=volume,src=tv3,dst=/t,volume-opt=type=tmpfs", "busybox", "true")
	e.fail(1, `create tv4: invalid option key: "colour"`, "volume", "create", "-o", "colour=red", "tv4")
	e.ok("volume", "rm", "tv", "tv2")
}

func TestBindMountsAndTmpfs(t *testing.T) {
	e := withBusybox(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Read-write by default: the host sees what the container writes.
	if out := e.ok("run", "--rm", "-v", host+":/h", "busybox", "sh", "-c", "cat /h/f; echo back > /h/g"); out != "from host\n" {
		t.Errorf("bind read: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "g")); string(b) != "back\n" {
		t.Errorf("host sees %q", b)
	}
	// :ro refuses writes with EROFS.
	out, errOut, code := e.fusebox("run", "--rm", "-v", host+":/h:ro", "busybox", "sh", "-c", "cat /h/f && echo x > /h/f")
	if code == 0 || out != "from host\n" || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf(":ro bind: exit %d, %q, %q", code, out, errOut)
	}
	e.fail(1, "Read-only file system", "run", "--rm", "--mount", "type=bind,source="+host+",target=/h,readonly", "busybox", "touch", "/h/n")
	// A missing host path is made a directory, as Docker does.
	missing := filepath.Join(t.TempDir(), "new", "sub")
	e.ok("run", "--rm", "-v", missing+":/m", "busybox", "touch", "/m/made")
	if _, err := os.Stat(filepath.Join(missing, "made")); err != nil {
		t.Errorf("missing host path: %v", err)
	}
	// --mount refuses a missing source instead.
	e.fail(125, "bind source path does not exist: /nonexistent-src", "run", "--rm", "--mount", "type=bind,src=/nonexistent-src,dst=/x", "busybox", "true")

	// tmpfs, from --tmpfs and --mount.
	out = e.ok("run", "--rm", "--tmpfs", "/t:size=1m,mode=1770", "--mount", "type=tmpfs,target=/t2,tmpfs-size=2m", "busybox", "sh", "-c",
		"grep -E ' /t2? ' /proc/mounts | cut -d' ' -f1-4; stat -c %a /t")
	for _, want := range []string{"tmpfs /t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770", "tmpfs /t2 tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k", "1770"} {
		if !strings.Contains(out, want) {
			t.Errorf("tmpfs mounts:\n%s\nlack %q", out, want)
		}
	}

	// --volumes-from shares the other container's mounts, :ro read-only.
	e.ok("create", "--name", "src", "-v", "shared:/s", "-v", host+":/h", "busybox", "true")
	e.ok("run", "--rm", "-v", "shared:/s", "busybox", "sh", "-c", "echo v > /s/f")
	if out := e.ok("run", "--rm", "--volumes-from", "src", "busybox", "cat", "/s/f", "/h/f"); out != "v\nfrom host\n" {
		t.Errorf("--volumes-from: %q", out)
	}
	e.fail(1, "Read-only file system", "run", "--rm", "--volumes-from", "src:ro", "busybox", "touch", "/s/g")
	e.ok("rm", "src")
	e.ok("volume", "rm", "shared")
}

func TestVolumesOutOfDiffCommitExport(t *testing.T) {
	e := withBusybox(t)
	e.ok("run", "--name", "wr", "-v", "named:/data", "-v", "/anon", "busybox", "sh", "-c", "echo a > /data/f; echo b > /anon/g; echo c > /top")
	diff := e.ok("diff", "wr")
	if !strings.Contains(diff, "A /top") || strings.Contains(diff, "/data/f") || strings.Contains(diff, "/anon/g") {
		t.Errorf("diff shows volume content or misses /top:\n%s", diff)
	}
	e.ok("commit", "wr", "withvol:1")
	if out := e.ok("run", "--rm", "withvol:1", "sh", "-c", "cat /top; ls -A /data; ls -A /anon"); out != "c\n" {
		t.Errorf("committed image carries volume content: %q", out)
	}
	tarPath := filepath.Join(t.TempDir(), "w.tar")
	e.ok("export", "-o", tarPath, "wr")
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	sawTop := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if name == "data/f" || name == "anon/g" {
			t.Errorf("export carries volume file %s", name)
		}
		sawTop = sawTop || name == "top"
	}
	if !sawTop {
		t.Error("export lacks /top")
	}

	// rm -v removes the anonymous volume, not the named one.
	if n := len(volumeNames(e)); n != 2 {
		t.Fatalf("%d volumes, want named and one anonymous", n)
	}
	e.ok("rm", "-v", "wr")
	if v := strings.Join(volumeNames(e), " "); v != "named" {
		t.Errorf("after rm -v: %q", v)
	}
	// prune: anonymous unused volumes by default, named ones with --all.
	e.ok("create", "--name", "pp", "-v", "/x", "busybox", "true")
	e.ok("rm", "pp")
	e.ok("create", "--name", "keep", "-v", "/y", "busybox", "true")
	if n := len(volumeNames(e)); n != 3 {
		t.Fatalf("%d volumes before prune, want 3", n)
	}
	if out := e.ok("volume", "prune", "-f"); !strings.Contains(out, "Deleted Volumes:\n") || strings.Contains(out, "named") {
		t.Errorf("volume prune: %q", out)
	}
	if n := len(volumeNames(e)); n != 2 {
		t.Errorf("%d volumes after prune, want named and keep's", n)
	}
	if out := e.ok("volume", "prune", "-af"); !strings.Contains(out, "named\n") {
		t.Errorf("volume prune -a: %q", out)
	}
	if n := len(volumeNames(e)); n != 1 {
		t.Errorf("%d volumes after prune -a, want keep's one in use", n)
	}
}

func TestVolumeBadInput(t *testing.T) {
	e := withBusybox(t)
	// An image whose /esc climbs above its root through a symlink (the
	// store refuses relative links that leave a layer, so an absolute one).
	e.ok("run", "--name", "mk", "busybox", "ln", "-s", "/../../../../../../../../tmp", "/esc")
	e.ok("commit", "mk", "esc:1")
	e.ok("rm", "mk")
	dirs := len(e.containerDirs())
	host := t.TempDir()
	for _, c := range []struct {
		msg  string
		args []string
	}{
		{"invalid spec: /a:/b:/c:/d: too many colons", []string{"-v", "/a:/b:/c:/d"}},
		{`create a/b: "a/b" includes invalid characters for a local volume name`, []string{"-v", "a/b:/c"}},
		{"mount path must be absolute", []string{"-v", host + ":rel"}},
		{"invalid mode: bogus", []string{"-v", host + ":/x:bogus"}},
		{"destination can't be '/'", []string{"-v", host + ":/"}},
		{"Duplicate mount point: /x", []string{"-v", host + ":/x", "--tmpfs", "/x"}},
		{"invalid field 'foo' must be a key=value pair", []string{"--mount", "foo"}},
		{"unexpected key 'color' in 'color=red'", []string{"--mount", "type=bind,color=red"}},
		{"cannot mix 'tmpfs-*' options with mount type 'volume'", []string{"--mount", "target=/x,tmpfs-size=1m"}},
		{`invalid mount config for type "bind": field Source must not be empty`, []string{"--mount", "type=bind,target=/x"}},
		{"mount type unknown", []string{"--mount", "type=weird,target=/x"}},
		{"invalid tmpfs options", []string{"--tmpfs", "/t:size=lots"}},
		{"No such container: ghost", []string{"--volumes-from", "ghost"}},
		{"leaves the container's root filesystem", []string{"-v", "escvol:/esc/x"}},
		{"leaves the container's root filesystem", []string{"-v", host + "/made-not:/esc"}},
	} {
		image := "busybox"
		if strings.Contains(c.msg, "leaves") {
			image = "esc:1"
		}
		args := append(append([]string{"run", "--rm"}, c.args...), image, "true")
		_, errOut, code := e.fusebox(args...)
		if code != 125 || !strings.Contains(errOut, c.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("run %v: exit %d, stderr %q, want 125 and one line with %q", c.args, code, errOut, c.msg)
		}
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("bad runs left containers: %q", out)
	}
	if got := len(e.containerDirs()); got != dirs {
		t.Errorf("bad runs left %d state directories", got-dirs)
	}
	if v := volumeNames(e); len(v) != 0 {
		t.Errorf("bad runs left volumes: %v", v)
	}
	if _, err := os.Stat(filepath.Join(host, "made-not")); !os.IsNotExist(err) {
		t.Errorf("a refused bind left its host directory: %v", err)
	}
	e.fail(1, `create a/b: "a/b" includes invalid characters`, "volume", "create", "a/b")
	e.fail(1, `plugin "nfs" not found`, "volume", "create", "-d", "nfs", "v1")
	if v := volumeNames(e); len(v) != 0 {
		t.Errorf("bad creates left volumes: %v", v)
	}
}

func TestDockerCLIVolumes(t *testing.T) {
	requireDocker(t)
	e := withBusybox(t)
	if out := e.dockerOK("volume", "create", "--label", "team=a", "dv"); out != "dv\n" {
		t.Errorf("docker volume create: %q", out)
	}
	if out := e.dockerOK("volume", "ls", "--format", "{{.Driver}} {{.Name}} {{.Labels}}"); out != "local dv team=a\n" {
		t.Errorf("docker volume ls: %q", out)
	}
	if out := e.dockerOK("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels.team}}", "dv"); out != "dv local local a\n" {
		t.Errorf("docker volume inspect: %q", out)
	}
	host := t.TempDir()
	e.dockerOK("run", "--rm", "-v", "dv:/d", "-v", host+":/h", "busybox", "sh", "-c", "echo x > /d/f; echo y > /h/f")
	if out := e.dockerOK("run", "--rm", "-v", "dv:/d:ro", "--mount", "type=bind,src="+host+",dst=/h,readonly", "busybox", "cat", "/d/f", "/h/f"); out != "x\ny\n" {
		t.Errorf("docker run -v: %q", out)
	}
	e.dockerOK("create", "--name", "cc", "-v", "dv:/d", "--tmpfs", "/t", "busybox", "true")
	if out := e.dockerOK("inspect", "-f", "{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}}:{{.RW}} {{end}}", "cc"); !strings.Contains(out, "volume:dv:/d:true") {
		t.Errorf("docker inspect Mounts: %q", out)
	}
	if _, errOut, code := e.docker("volume", "rm", "dv"); code == 0 || !strings.Contains(errOut, "volume is in use") {
		t.Errorf("docker volume rm of a volume in use: exit %d, %q", code, errOut)
	}
	e.dockerOK("rm", "cc")
	if out := e.dockerOK("volume", "rm", "dv"); out != "dv\n" {
		t.Errorf("docker volume rm: %q", out)
	}
	if out := e.dockerOK("volume", "ls", "-q"); out != "" {
		t.Errorf("docker volume ls after rm: %q", out)
	}
}
