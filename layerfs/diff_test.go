package layerfs_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
)

func reg(p string, mode uint32, data string) layertest.File {
	return layertest.File{Path: p, Type: cas.TypeRegular, Mode: mode, Data: []byte(data)}
}

func dirE(p string, mode uint32) layertest.File {
	return layertest.File{Path: p, Type: cas.TypeDir, Mode: mode}
}

// diffLowers are the layers of the differential tests, top first.
var diffLowers = []layertest.Layer{
	{
		dirE("d", 0755), reg("d/keep", 0644, "keep"), reg("d/new-in-top", 0644, "top"),
		reg("f", 0644, "f data"), reg("g3", 0644, "g3"),
		{Path: "gone", Type: cas.TypeWhiteout},
		dirE("o", 0755), {Path: "o", Type: cas.TypeOpaque}, reg("o/top", 0644, "t"),
	},
	{
		dirE("d", 0755), reg("d/keep", 0644, "old keep"), reg("d/sub", 0600, "sub"),
		dirE("e", 0755), reg("e/x", 0644, "x"),
		reg("g", 0644, "g"), reg("g2", 0644, "g2"), reg("h", 0644, "h"),
		reg("big", 0644, strings.Repeat("B", 100000)),
		reg("r1", 0640, "r1"), reg("x1", 0644, "one"), reg("x2", 0600, "two"),
		reg("t", 0644, "to be truncated"),
		reg("a", 0644, "hard"), {Path: "hl", Type: cas.TypeHardlink, Linkname: "a"},
		dirE("pd", 0755), reg("pd/in", 0644, "in"),
		dirE("deep", 0755), dirE("deep/sub", 0755), reg("deep/sub/file", 0644, "deep"),
		reg("gone", 0644, "hidden by the top layer"),
		dirE("o", 0755), reg("o/low", 0644, "low"),
		{Path: "sym", Type: cas.TypeSymlink, Linkname: "f"},
	},
}

// diffOps is the operation sequence run on both file systems; each error
// is part of the result.
func diffOps(root string) []string {
	p := func(s string) string { return filepath.Join(root, s) }
	var res []string
	rec := func(name string, err error) {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			res = append(res, fmt.Sprintf("%s: %v", name, errno))
		} else if err != nil {
			res = append(res, fmt.Sprintf("%s: %v", name, errors.Unwrap(err)))
		} else {
			res = append(res, name+": ok")
		}
	}
	rec("create", os.WriteFile(p("new.txt"), []byte("new"), 0640))
	rec("append", appendFile(p("d/keep"), " more"))
	rec("chmod", os.Chmod(p("f"), 0600))
	rec("chown", os.Lchown(p("g"), 1000, 1000))
	rec("rename-lower-dir", os.Rename(p("d"), p("d2")))
	rec("read-renamed", readEq(p("d2/sub"), "sub"))
	rec("mkdir-upper", os.MkdirAll(p("u1/u2"), 0755))
	rec("write-upper", os.WriteFile(p("u1/u2/f"), []byte("u"), 0644))
	rec("rename-upper-dir", os.Rename(p("u1"), p("u3")))
	rec("unlink-lower", os.Remove(p("g2")))
	rec("link", os.Link(p("new.txt"), p("newlink")))
	rec("unlink-dir-content", os.Remove(p("e/x")))
	rec("rmdir-lower", os.Remove(p("e")))
	rec("mkdir-over-deleted", os.Mkdir(p("e"), 0700))
	rec("create-in-opaque", os.WriteFile(p("e/y"), []byte("y"), 0644))
	rec("symlink", os.Symlink("new.txt", p("sl")))
	rec("setxattr", unix.Lsetxattr(p("h"), "user.a", []byte("va"), 0))
	rec("truncate", os.Truncate(p("big"), 10))
	rec("rename-lower-file", os.Rename(p("r1"), p("d2/r1moved")))
	rec("rename-over", os.Rename(p("f"), p("g3")))
	rec("noreplace", unix.Renameat2(unix.AT_FDCWD, p("x1"), unix.AT_FDCWD, p("x2"), unix.RENAME_NOREPLACE))
	rec("exchange", unix.Renameat2(unix.AT_FDCWD, p("x1"), unix.AT_FDCWD, p("x2"), unix.RENAME_EXCHANGE))
	rec("o-trunc", os.WriteFile(p("t"), []byte("trunc"), 0644))
	rec("unlink-hardlinked", os.Remove(p("a")))
	rec("chmod-dir", os.Chmod(p("pd"), 0700))
	rec("rename-deep", os.Rename(p("deep"), p("deep2")))
	rec("read-deep", readEq(p("deep2/sub/file"), "deep"))
	rec("write-deep", appendFile(p("deep2/sub/file"), "er"))
	rec("rename-back", os.Rename(p("deep2/sub"), p("sub-top")))
	rec("rmdir-nonempty", os.Remove(p("pd")))
	rec("unlink-missing", os.Remove(p("nope")))
	rec("mkdir-exists", os.Mkdir(p("o"), 0755))
	rec("create-over-whiteout", os.WriteFile(p("g2"), []byte("again"), 0644))
	rec("rmdir-merged", removeAll(p("o")))
	return res
}

func removeAll(p string) error { return os.RemoveAll(p) }

func appendFile(p, s string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readEq(p, want string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if string(b) != want {
		return fmt.Errorf("read %q, want %q", b, want)
	}
	return nil
}

// snapshot describes the visible tree: names, types, modes, owners,
// sizes, contents, link counts of non-directories, symlink targets and
// user xattrs.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("mode=%#o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" size=%d nlink=%d sha=%x", st.Size, st.Nlink, sha256.Sum256(b))
		case syscall.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		buf := make([]byte, 4096)
		if n, err := unix.Llistxattr(p, buf); err == nil {
			var names []string
			for _, a := range strings.Split(string(buf[:n]), "\x00") {
				if strings.HasPrefix(a, "user.") {
					v := make([]byte, 4096)
					k, _ := unix.Lgetxattr(p, a, v)
					names = append(names, a+"="+string(v[:k]))
				}
			}
			sort.Strings(names)
			if len(names) > 0 {
				desc += " xattrs=" + strings.Join(names, ",")
			}
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

func compareTrees(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: %s missing (want %s)", what, p, w)
		} else if g != w {
			t.Errorf("%s: %s = %s, want %s", what, p, g, w)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: extra %s (%s)", what, p, g)
		}
	}
}

func kernelOverlay(t *testing.T, lowers []string, upper, work string) string {
	t.Helper()
	mnt := t.TempDir()
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=on,metacopy=on", strings.Join(lowers, ":"), upper, work)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Skipf("kernel overlayfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}

var diffLowers2 = []layertest.Layer{
	{
		dirE("a", 0755), reg("a/x", 0644, "ax"), dirE("b", 0700), reg("b/y", 0600, "by"),
		dirE("empty", 0755), {Path: "ln", Type: cas.TypeSymlink, Linkname: "a/x"},
		reg("s", 0644, "s"), dirE("keep", 0755), reg("keep/k", 0644, "k"),
		{Path: "dx", Type: cas.TypeDir, Mode: 0755, Xattrs: map[string][]byte{"user.d": []byte("1")}},
	},
}

func diffOps2(root string) []string {
	p := func(s string) string { return filepath.Join(root, s) }
	var res []string
	rec := func(name string, err error) {
		var errno syscall.Errno
		switch {
		case errors.As(err, &errno):
			res = append(res, fmt.Sprintf("%s: %v", name, errno))
		case err != nil:
			res = append(res, fmt.Sprintf("%s: %v", name, errors.Unwrap(err)))
		default:
			res = append(res, name+": ok")
		}
	}
	rec("chmod-dir", os.Chmod(p("a"), 0711))
	rec("chown-dir", os.Lchown(p("b"), 7, 8))
	rec("xattr-dir", unix.Lsetxattr(p("dx"), "user.e", []byte("2"), 0))
	rec("rmxattr-dir", unix.Lremovexattr(p("dx"), "user.d"))
	rec("lchown-symlink", os.Lchown(p("ln"), 3, 4))
	rec("mkfifo", unix.Mkfifo(p("fifo"), 0640))
	rec("rename-dir-over-empty", unix.Rename(p("b"), p("empty"))) // os.Rename refuses existing dirs
	rec("mkdir-new", os.Mkdir(p("n"), 0755))
	rec("write-new", os.WriteFile(p("n/f"), []byte("nf"), 0644))
	rec("exchange-dirs", unix.Renameat2(unix.AT_FDCWD, p("a"), unix.AT_FDCWD, p("n"), unix.RENAME_EXCHANGE))
	rec("read-exchanged", readEq(p("a/f"), "nf"))
	rec("read-exchanged-lower", readEq(p("n/x"), "ax"))
	rec("move-into-renamed", os.Rename(p("s"), p("empty/s")))
	rec("unlink-in-renamed", os.Remove(p("empty/y")))
	rec("link-lower", os.Link(p("keep/k"), p("klink")))
	rec("extend", os.Truncate(p("klink"), 100))
	rec("utimes-lower", os.Chtimes(p("n/x"), time.Unix(1, 0), time.Unix(2, 0)))
	rec("rmdir-renamed-nonempty", os.Remove(p("empty")))
	rec("rm-renamed", os.RemoveAll(p("empty")))
	rec("mkdir-over-renamed", os.Mkdir(p("b"), 0755))
	rec("rename-into-self", os.Rename(p("keep"), p("keep/sub")))
	return res
}

func TestDifferentialKernelOverlay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lowers []layertest.Layer
		ops    func(string) []string
	}{
		{"basic", diffLowers, diffOps},
		{"dirs", diffLowers2, diffOps2},
	} {
		t.Run(tc.name, func(t *testing.T) { differential(t, tc.lowers, tc.ops) })
	}
}

func differential(t *testing.T, lowers []layertest.Layer, ops func(string) []string) {
	layertest.Skip(t)
	var lowerDirs []string
	var srcs []layerfs.Source
	for _, l := range lowers {
		d := t.TempDir()
		layertest.WriteDir(t, d, l)
		s, err := layerfs.NewDirSource(d)
		if err != nil {
			t.Fatal(err)
		}
		lowerDirs = append(lowerDirs, d)
		srcs = append(srcs, s)
	}
	ku, kw := t.TempDir(), t.TempDir()
	kmnt := kernelOverlay(t, lowerDirs, ku, kw)
	before := snapshot(t, kmnt)

	lu, lw := t.TempDir(), t.TempDir()
	srv, lmnt := layertest.MountT(t, layerfs.MountOptions{Lowers: srcs, UpperDir: lu, WorkDir: lw})
	compareTrees(t, "initial", before, snapshot(t, lmnt))

	kres := ops(kmnt)
	lres := ops(lmnt)
	for i := range kres {
		if kres[i] != lres[i] {
			t.Errorf("op %d: layerfs %q, kernel %q", i, lres[i], kres[i])
		}
	}
	t.Logf("ops: %q", lres)
	want := snapshot(t, kmnt)
	t.Logf("tree: %d paths", len(want))
	compareTrees(t, "after ops", want, snapshot(t, lmnt))

	changes := srv.Journal().Changes()
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	// the upper dir layerfs wrote, under kernel overlayfs
	k2 := kernelOverlay(t, lowerDirs, lu, lw)
	compareTrees(t, "kernel over layerfs upper", want, snapshot(t, k2))
	if len(changes) == 0 {
		t.Error("journal recorded nothing")
	}

	// and the other way: layerfs over the upper dir kernel overlayfs wrote
	if err := unix.Unmount(kmnt, 0); err != nil {
		t.Fatal(err)
	}
	_, l2 := layertest.MountT(t, layerfs.MountOptions{Lowers: srcs, UpperDir: ku, WorkDir: kw})
	compareTrees(t, "layerfs over kernel upper", want, snapshot(t, l2))
}
