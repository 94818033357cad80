package testdata

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
)

// BusyboxBinary is the statically linked busybox of Debian's busybox-static
// package, the one program inside every test image.
const BusyboxBinary = "/bin/busybox"

// Paths of the busybox image that tests may rely on. Layer 2 adds them; layer
// 3 deletes or replaces some of them.
const (
	// BusyboxDeleted is a file of layer 2 that layer 3 deletes with a
	// whiteout (.wh.remove-me.txt).
	BusyboxDeleted = "srv/remove-me.txt"
	// BusyboxDeletedDir is a directory of layer 2 that layer 3 deletes with
	// a whiteout.
	BusyboxDeletedDir = "srv/data/nested"
	// BusyboxOpaque is a directory of layer 2 whose contents layer 3
	// replaces (.wh..wh..opq): only new.txt and new-link.txt remain.
	BusyboxOpaque = "srv/replace"
	// BusyboxIndex is the page busybox httpd serves from /var/www.
	BusyboxIndex = "var/www/index.html"
	// BusyboxIndexContent is that page's content.
	BusyboxIndexContent = "<html><body><h1>fusebox busybox test image</h1></body></html>\n"
	// BusyboxUser is the non-root user of /etc/passwd, uid and gid 1000.
	BusyboxUser = "user"
)

// busyboxInput reads the busybox binary and its applet list, which are all
// the busybox image depends on besides this code.
type busyboxInput struct {
	bin     *content
	sum     string
	applets []string
}

func readBusybox() (*busyboxInput, error) {
	f, err := os.Open(BusyboxBinary)
	if err != nil {
		return nil, fmt.Errorf("busybox-static not installed: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", BusyboxBinary, err)
	}
	out, err := exec.Command(BusyboxBinary, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", BusyboxBinary, err)
	}
	in := &busyboxInput{bin: fileContent(BusyboxBinary, n), sum: hex.EncodeToString(h.Sum(nil))}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			in.applets = append(in.applets, a)
		}
	}
	return in, nil
}

// busyboxBase is the first layer of every image: busybox with its applets as
// hard links in /bin (as Docker's official busybox image has them), the
// users, and the usual empty directories.
func busyboxBase(in *busyboxInput) []entry {
	es := []entry{
		dir("bin", 0o755),
		file("bin/busybox", 0o755, in.bin),
		dir("dev", 0o755),
		dir("etc", 0o755),
		text("etc/group", 0o644, "root:x:0:\ndaemon:x:1:\nuser:x:1000:\nnogroup:x:65534:\n"),
		text("etc/hostname", 0o644, ""),
		text("etc/hosts", 0o644, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
		text("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"+
			"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"+
			"user:x:1000:1000:user:/home/user:/bin/sh\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
		text("etc/resolv.conf", 0o644, ""),
		text("etc/shadow", 0o640, "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nuser:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"),
		dir("home", 0o755),
		dir("home/user", 0o755).owned(1000, 1000),
		dir("proc", 0o755),
		dir("root", 0o700),
		dir("sys", 0o755),
		dir("tmp", 0o1777),
		dir("usr", 0o755),
		dir("usr/sbin", 0o755),
		dir("var", 0o755),
		dir("var/www", 0o755),
		text(BusyboxIndex, 0o644, BusyboxIndexContent),
	}
	for _, a := range in.applets {
		es = append(es, file("bin/"+a, 0o755, in.bin))
	}
	return es
}

func busyboxSpec(in *busyboxInput) imageSpec {
	aTxt := bytesContent([]byte("a: added by layer 2\n"))
	layer2 := []entry{
		dir("srv", 0o755),
		dir("srv/data", 0o755),
		file("srv/data/a.txt", 0o644, aTxt),
		file("srv/data/a-hardlink.txt", 0o644, aTxt), // a hard link of a.txt
		text("srv/data/b.txt", 0o600, "b: private to root\n"),
		dir("srv/data/nested", 0o750),
		text("srv/data/nested/c.txt", 0o644, "c: deleted with its directory by layer 3\n"),
		symlink("srv/data/link-to-a", "a.txt"),
		text("srv/keep.txt", 0o644, "keep: layer 2 version\n"),
		text(BusyboxDeleted, 0o644, "deleted by layer 3\n"),
		dir(BusyboxOpaque, 0o755),
		text(BusyboxOpaque+"/old1.txt", 0o644, "old1: hidden by layer 3's opaque directory\n"),
		text(BusyboxOpaque+"/old2.txt", 0o644, "old2: hidden by layer 3's opaque directory\n"),
		dir(BusyboxOpaque+"/sub", 0o755),
		text(BusyboxOpaque+"/sub/old3.txt", 0o644, "old3: hidden by layer 3's opaque directory\n"),
		dir("home", 0o755),
		dir("home/user", 0o755).owned(1000, 1000),
		text("home/user/notes.txt", 0o640, "notes of user\n").owned(1000, 1000),
		dir("usr", 0o755),
		dir("usr/local", 0o755),
		dir("usr/local/bin", 0o755),
		text("usr/local/bin/hello", 0o755, "#!/bin/sh\necho hello from the busybox test image\n"),
		symlink("usr/local/bin/hi", "/usr/local/bin/hello"),
	}
	newTxt := bytesContent([]byte("new: written by layer 3\n"))
	layer3 := []entry{
		dir("srv", 0o755),
		dir("srv/data", 0o755),
		whiteout(BusyboxDeletedDir),
		text("srv/keep.txt", 0o644, "keep: layer 3 version\n"),
		whiteout(BusyboxDeleted),
		dir(BusyboxOpaque, 0o755),
		opaque(BusyboxOpaque),
		file(BusyboxOpaque+"/new.txt", 0o644, newTxt),
		file(BusyboxOpaque+"/new-link.txt", 0o644, newTxt),
		symlink("srv/latest", path.Base(BusyboxOpaque)+"/new.txt"),
		dir("etc", 0o755),
		text("etc/motd", 0o644, "fusebox busybox test image, layer 3\n"),
	}
	return imageSpec{
		name: "busybox",
		tag:  "latest",
		env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		cmd:  []string{"sh"},
		layers: []layer{
			{entries: busyboxBase(in), createdBy: "/bin/sh -c #(nop) ADD file:%s in / "},
			{entries: layer2, createdBy: "/bin/sh -c #(nop) COPY dir:%s in / "},
			{entries: layer3, createdBy: "/bin/sh -c rm -r /srv/remove-me.txt /srv/data/nested /srv/replace && mkdir /srv/replace && echo new > /srv/replace/new.txt && ln /srv/replace/new.txt /srv/replace/new-link.txt && ln -s replace/new.txt /srv/latest"},
		},
		oci:       true,
		keepTars:  true,
		lowerDirs: true,
	}
}

// busyboxRecipe changes when the busybox image's files or forms change
// without a change to the shared code that Version covers.
const busyboxRecipe = "2"

// BuildBusybox returns the busybox test image from cacheDir, building it
// there first if needed: three layers (busybox base; files, a directory, a
// hard link and symlinks; whiteouts and an opaque directory), tagged
// busybox:latest, as a docker-archive, an OCI layout and archive, layer tars
// and overlayfs lower dirs.
func BuildBusybox(ctx context.Context, cacheDir string) (*Image, error) {
	in, err := readBusybox()
	if err != nil {
		return nil, err
	}
	return cached(ctx, cacheDir, cacheKey("busybox", busyboxRecipe, in.sum), func(ctx context.Context, dir string) (*Image, error) {
		return build(dir, busyboxSpec(in))
	})
}

// WriteBusyboxRootfs writes the merged view of the busybox image (what a
// container of it sees) into dir, which must exist; dir is the caller's to
// change.
func WriteBusyboxRootfs(dir string) error {
	in, err := readBusybox()
	if err != nil {
		return err
	}
	spec := busyboxSpec(in)
	ls := make([][]entry, len(spec.layers))
	for i, l := range spec.layers {
		ls[i] = l.entries
	}
	return writeDir(dir, merge(ls...))
}
