// Package layertest is the conformance suite every layerfs layer source
// runs: it describes layers as plain data, asks the source under test to
// hold them, mounts them with layerfs for real and checks what ordinary
// system calls see.
package layertest

import (
	"bytes"
	"context"
	"errors"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/internal/testenv"
	"github.com/fusebox/fusebox/layerfs"
)

// File is one entry of a test layer.
type File struct {
	Path     string
	Type     cas.EntryType
	Mode     uint32 // permission bits (07777)
	UID, GID uint32
	Data     []byte            // regular files
	Linkname string            // symlink target, or hard link target path
	Xattrs   map[string][]byte // user.* only, so every file system can hold them
	Dev      [2]uint32         // major, minor for devices
}

// Layer is a test layer.
type Layer []File

// RequestLog collects go-fuse's request log (MountOptions.Debug with
// Logger: log.New(&RequestLog{}, "", 0)) from its serving goroutines, so
// that a test can count the requests a walk cost.
type RequestLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (r *RequestLog) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Write(p)
}

// Lookups counts the LOOKUP requests for name.
func (r *RequestLog) Lookups(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range strings.Split(r.b.String(), "\n") {
		if strings.Contains(l, ": LOOKUP ") && strings.Contains(l, strconv.Quote(name)) {
			n++
		}
	}
	return n
}

// String is the log so far.
func (r *RequestLog) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String()
}

// MakeSource turns a layer into the source under test.
type MakeSource func(t *testing.T, l Layer) layerfs.Source

// Skip skips t unless it runs as root with /dev/fuse.
func Skip(t testing.TB) {
	t.Helper()
	testenv.RequireFUSE(t, "layerfs mounts")
}

// MountT mounts lowers (top first) read-only and unmounts in t.Cleanup.
func MountT(t testing.TB, opts layerfs.MountOptions) (*layerfs.Server, string) {
	t.Helper()
	dir := t.TempDir()
	// let other uids reach the mount point
	if err := os.Chmod(filepath.Dir(dir), 0755); err != nil {
		t.Fatal(err)
	}
	s, err := layerfs.Mount(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return s, dir
}

func reg(p string, mode uint32, data string) File {
	return File{Path: p, Type: cas.TypeRegular, Mode: mode, Data: []byte(data)}
}

func dir(p string, mode uint32) File { return File{Path: p, Type: cas.TypeDir, Mode: mode} }

// Run runs the suite against make.
func Run(t *testing.T, mk MakeSource) {
	Skip(t)
	mount := func(t *testing.T, layers ...Layer) string {
		srcs := make2(t, mk, layers)
		_, mnt := MountT(t, layerfs.MountOptions{Lowers: srcs})
		return mnt
	}
	t.Run("single", func(t *testing.T) {
		mnt := mount(t, Layer{
			dir("etc", 0755),
			{Path: "etc/passwd", Type: cas.TypeRegular, Mode: 0644, UID: 0, GID: 0, Data: []byte("root:x:0:0\n"), Xattrs: map[string][]byte{"user.k": []byte("v")}},
			{Path: "etc/shadow", Type: cas.TypeRegular, Mode: 0600, Data: []byte("secret")},
			{Path: "home", Type: cas.TypeDir, Mode: 0750, UID: 1000, GID: 1000},
			{Path: "home/f", Type: cas.TypeRegular, Mode: 04755, UID: 1000, GID: 100, Data: []byte("x")},
			{Path: "bin", Type: cas.TypeSymlink, Mode: 0777, Linkname: "usr/bin"},
			{Path: "fifo", Type: cas.TypeFifo, Mode: 0644},
			{Path: "null", Type: cas.TypeChar, Mode: 0666, Dev: [2]uint32{1, 3}},
			reg("a", 0644, "hard"),
			{Path: "b", Type: cas.TypeHardlink, Linkname: "a"},
			reg("empty", 0644, ""),
		})
		checkFile(t, mnt, "etc/passwd", 0644, 0, 0, "root:x:0:0\n")
		checkFile(t, mnt, "home/f", 04755, 1000, 100, "x")
		checkType(t, mnt, "home", unix.S_IFDIR, 0750, 1000, 1000)
		checkType(t, mnt, "fifo", unix.S_IFIFO, 0644, 0, 0)
		checkType(t, mnt, "null", unix.S_IFCHR, 0666, 0, 0)
		if st := lstat(t, mnt, "null"); st.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("null: rdev %#x, want 1:3", st.Rdev)
		}
		checkFile(t, mnt, "empty", 0644, 0, 0, "")
		if target, err := os.Readlink(filepath.Join(mnt, "bin")); err != nil || target != "usr/bin" {
			t.Errorf("readlink bin = %q, %v; want usr/bin", target, err)
		}
		v := make([]byte, 16)
		if n, err := unix.Lgetxattr(filepath.Join(mnt, "etc/passwd"), "user.k", v); err != nil || string(v[:n]) != "v" {
			t.Errorf("xattr user.k = %q, %v; want v", v[:n], err)
		}
		a, b := lstat(t, mnt, "a"), lstat(t, mnt, "b")
		if a.Ino != b.Ino || a.Nlink != 2 || b.Nlink != 2 {
			t.Errorf("hard link: ino %d/%d nlink %d/%d, want one ino and nlink 2", a.Ino, b.Ino, a.Nlink, b.Nlink)
		}
		if _, err := os.Lstat(filepath.Join(mnt, "missing")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing: %v, want not exist", err)
		}
		checkUnique(t, mnt)
		checkReaddirInos(t, mnt)
		// a mount without an upper dir is read-only
		for name, op := range map[string]func() error{
			"create": func() error { return os.WriteFile(filepath.Join(mnt, "new"), nil, 0644) },
			"write":  func() error { return os.WriteFile(filepath.Join(mnt, "etc/passwd"), nil, 0644) },
			"chmod":  func() error { return os.Chmod(filepath.Join(mnt, "etc/passwd"), 0600) },
			"remove": func() error { return os.Remove(filepath.Join(mnt, "empty")) },
			"mkdir":  func() error { return os.Mkdir(filepath.Join(mnt, "d"), 0755) },
		} {
			if err := op(); !errors.Is(err, syscall.EROFS) {
				t.Errorf("%s on a read-only mount: %v, want EROFS", name, err)
			}
		}
		// a non-root uid cannot read a 0600 root file (default_permissions)
		if err := asUID(1000, func() error {
			_, err := os.ReadFile(filepath.Join(mnt, "etc/shadow"))
			return err
		}); !errors.Is(err, os.ErrPermission) {
			t.Errorf("uid 1000 reading etc/shadow: %v, want permission denied", err)
		}
		if err := asUID(1000, func() error {
			_, err := os.ReadFile(filepath.Join(mnt, "etc/passwd"))
			return err
		}); err != nil {
			t.Errorf("uid 1000 reading etc/passwd: %v", err)
		}
	})
	t.Run("layers", func(t *testing.T) {
		lower := Layer{
			dir("d", 0755), reg("d/keep", 0644, "keep"), reg("d/gone", 0644, "gone"),
			dir("o", 0755), reg("o/hidden", 0644, "hidden"),
			dir("w", 0755), reg("w/x", 0644, "x"),
			reg("f", 0644, "lower"), reg("g", 0644, "lower g"),
			dir("m", 0700),
		}
		upper := Layer{
			dir("d", 0755), {Path: "d/gone", Type: cas.TypeWhiteout}, reg("d/new", 0644, "new"),
			dir("o", 0711), {Path: "o", Type: cas.TypeOpaque}, reg("o/own", 0644, "own"),
			{Path: "w", Type: cas.TypeWhiteout},
			reg("f", 0600, "upper"),
			{Path: "m", Type: cas.TypeDir, Mode: 0755, UID: 5},
		}
		mnt := mount(t, upper, lower)
		checkFile(t, mnt, "f", 0600, 0, 0, "upper")
		checkFile(t, mnt, "g", 0644, 0, 0, "lower g")
		checkFile(t, mnt, "d/keep", 0644, 0, 0, "keep")
		checkFile(t, mnt, "d/new", 0644, 0, 0, "new")
		checkType(t, mnt, "o", unix.S_IFDIR, 0711, 0, 0)
		checkType(t, mnt, "m", unix.S_IFDIR, 0755, 5, 0)
		for _, p := range []string{"d/gone", "o/hidden", "w", "w/x"} {
			if _, err := os.Lstat(filepath.Join(mnt, p)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %v, want not exist", p, err)
			}
		}
		checkNames(t, mnt, ".", "d", "f", "g", "m", "o")
		checkNames(t, mnt, "d", "keep", "new")
		checkNames(t, mnt, "o", "own")
		checkUnique(t, mnt)
		checkReaddirInos(t, mnt)
	})
	t.Run("sharedchain", func(t *testing.T) {
		srcs := make2(t, mk, []Layer{{reg("x", 0644, "same")}})
		var mnts []string
		for i := 0; i < 4; i++ {
			_, m := MountT(t, layerfs.MountOptions{Lowers: srcs})
			mnts = append(mnts, m)
		}
		for _, m := range mnts {
			checkFile(t, m, "x", 0644, 0, 0, "same")
		}
	})
	t.Run("negative", func(t *testing.T) {
		// A name that isn't there is asked for once: the kernel keeps
		// the miss (a negative entry) as it keeps a hit, through a
		// whiteout too.
		srcs := make2(t, mk, []Layer{{dir("d", 0755), {Path: "d/gone", Type: cas.TypeWhiteout}}, {dir("d", 0755), reg("d/gone", 0644, "x")}})
		var reqs RequestLog
		_, mnt := MountT(t, layerfs.MountOptions{Lowers: srcs, Debug: true, Logger: log.New(&reqs, "", 0)})
		for i := 0; i < 3; i++ {
			for _, p := range []string{"d/missing", "d/gone", "nowhere"} {
				if _, err := os.Lstat(filepath.Join(mnt, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: %v, want not exist", p, err)
				}
			}
		}
		for _, name := range []string{"missing", "gone", "nowhere"} {
			if n := reqs.Lookups(name); n != 1 {
				t.Errorf("%d LOOKUPs of %q for three stats, want 1", n, name)
			}
		}
	})
	t.Run("bigread", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		mnt := mount(t, Layer{reg("big", 0644, string(data))})
		got, err := os.ReadFile(filepath.Join(mnt, "big"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read big: %d bytes, %v; want %d bytes equal", len(got), err, len(data))
		}
	})
}

func make2(t *testing.T, mk MakeSource, layers []Layer) []layerfs.Source {
	srcs := make([]layerfs.Source, len(layers))
	for i, l := range layers {
		srcs[i] = mk(t, l)
	}
	return srcs
}

// asUID runs fn on a thread whose file-system uid and gid are uid; the
// thread is thrown away afterwards.
func asUID(uid int, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		unix.Setfsgid(uid)
		unix.Setfsuid(uid)
		ch <- fn()
	}()
	return <-ch
}

func lstat(t *testing.T, mnt, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, p), &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func checkType(t *testing.T, mnt, p string, typ, mode, uid, gid uint32) {
	t.Helper()
	st := lstat(t, mnt, p)
	if st.Mode&unix.S_IFMT != typ || st.Mode&07777 != mode || st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: mode %#o uid %d gid %d, want %#o uid %d gid %d", p, st.Mode, st.Uid, st.Gid, typ|mode, uid, gid)
	}
}

func checkFile(t *testing.T, mnt, p string, mode, uid, gid uint32, data string) {
	t.Helper()
	checkType(t, mnt, p, unix.S_IFREG, mode, uid, gid)
	if st := lstat(t, mnt, p); st.Size != int64(len(data)) {
		t.Errorf("%s: size %d, want %d", p, st.Size, len(data))
	}
	got, err := os.ReadFile(filepath.Join(mnt, p))
	if err != nil || string(got) != data {
		t.Errorf("%s: read %q, %v; want %q", p, got, err, data)
	}
}

func checkNames(t *testing.T, mnt, p string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(mnt, p))
	if err != nil {
		t.Fatalf("readdir %s: %v", p, err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	sort.Strings(want)
	if !equal(got, want) {
		t.Errorf("readdir %s = %q, want %q", p, got, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkUnique walks the mount: distinct files have distinct inode numbers.
func checkUnique(t *testing.T, mnt string) {
	t.Helper()
	seen := map[uint64]string{}
	links := map[uint64]uint64{}
	filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", p, err)
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		if prev, ok := seen[st.Ino]; ok && (fi.IsDir() || st.Nlink < 2) {
			t.Errorf("inode %d shared by %s and %s", st.Ino, prev, p)
		}
		seen[st.Ino] = p
		links[st.Ino] = st.Nlink
		return nil
	})
}

// checkReaddirInos compares the inode numbers of readdir (getdents) with
// those of stat, for every directory.
func checkReaddirInos(t *testing.T, mnt string) {
	t.Helper()
	filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.IsDir() {
			return nil
		}
		for name, ino := range getdents(t, p) {
			if name == "." || name == ".." {
				continue
			}
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(p, name), &st); err != nil {
				t.Errorf("lstat %s/%s: %v", p, name, err)
				continue
			}
			if st.Ino != ino {
				t.Errorf("%s/%s: readdir ino %d, stat ino %d", p, name, ino, st.Ino)
			}
		}
		return nil
	})
}

func getdents(t *testing.T, p string) map[string]uint64 {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer unix.Close(fd)
	out := map[string]uint64{}
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatalf("getdents %s: %v", p, err)
		}
		if n == 0 {
			return out
		}
		b := buf[:n]
		for len(b) > 0 {
			reclen := int(uint16(b[16]) | uint16(b[17])<<8)
			ino := uint64(0)
			for i := 7; i >= 0; i-- {
				ino = ino<<8 | uint64(b[i])
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			out[string(name)] = ino
			b = b[reclen:]
		}
	}
}
