package testdata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Debian's minbase image: what debootstrap makes, as one layer.
const (
	DebianSuite  = "bookworm"
	DebianMirror = "http://deb.debian.org/debian"
	// DebianMirrorEnv names the variable that points debootstrap at another
	// mirror (a local one, say); the mirror is part of the cache key.
	DebianMirrorEnv = "FUSEBOX_DEBIAN_MIRROR"
)

func debianMirror() string {
	if m := os.Getenv(DebianMirrorEnv); m != "" {
		return m
	}
	return DebianMirror
}

// ErrDebootstrap means the Debian image could not be made because
// debootstrap is missing or failed, most often for want of a network; tests
// skip on it.
var ErrDebootstrap = errors.New("debootstrap failed")

// debianRecipe changes when the Debian build's steps change; the image
// itself is not reproducible (the mirror moves), only its recipe is.
const debianRecipe = "2"

// debootstrapTimeout bounds a run; it takes under a minute with a mirror.
const debootstrapTimeout = 15 * time.Minute

// BuildDebian returns the Debian bookworm minbase image from cacheDir,
// building it there first if needed with `debootstrap --variant=minbase`
// (about a minute and 200 MB with network access, from $FUSEBOX_DEBIAN_MIRROR
// or deb.debian.org): one layer, Cmd
// ["bash"], tagged debian:bookworm, as a docker-archive only. Device nodes
// under /dev, downloaded .debs and apt lists are left out, as Docker's
// Debian images leave them out. Errors from debootstrap wrap ErrDebootstrap.
func BuildDebian(ctx context.Context, cacheDir string) (*Image, error) {
	mirror := debianMirror()
	return cached(ctx, cacheDir, cacheKey("debian", debianRecipe, DebianSuite, mirror), func(ctx context.Context, dir string) (*Image, error) {
		rootfs := filepath.Join(dir, "rootfs")
		defer os.RemoveAll(rootfs)
		if _, err := exec.LookPath("debootstrap"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDebootstrap, err)
		}
		ctx, cancel := context.WithTimeout(ctx, debootstrapTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", DebianSuite, rootfs, mirror)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%w: debootstrap %s: %w: %s", ErrDebootstrap, DebianSuite, err, lastLine(out.String()))
		}
		// debootstrap copies the host's; a container gets its own from the
		// runtime, and an image must not carry the build machine's.
		for _, f := range []string{"etc/hostname", "etc/resolv.conf"} {
			if err := os.WriteFile(filepath.Join(rootfs, f), nil, 0o644); err != nil {
				return nil, err
			}
		}
		es, err := treeEntries(rootfs, debianSkip)
		if err != nil {
			return nil, fmt.Errorf("read debootstrap tree: %w", err)
		}
		return build(dir, imageSpec{
			name:   "debian",
			tag:    DebianSuite,
			env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			cmd:    []string{"bash"},
			layers: []layer{{entries: es, createdBy: "/bin/sh -c #(nop) ADD file:%s in / "}},
		})
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// debianSkip leaves out what Docker's Debian images leave out.
func debianSkip(rel string, isDir bool) bool {
	if isDir {
		return false
	}
	switch filepath.Dir(rel) {
	case "dev", "var/lib/apt/lists", "var/cache/apt/archives":
		return !strings.HasSuffix(rel, "/lock")
	case "var/cache/apt":
		return strings.HasSuffix(rel, ".bin")
	}
	return false
}

// treeEntries describes the tree under root as layer entries, with owners,
// modes, device numbers and hard links as they are on disk (mtimes become
// the fixed epoch). skip leaves paths out.
func treeEntries(root string, skip func(rel string, isDir bool) bool) ([]entry, error) {
	var es []entry
	inodes := map[uint64]*content{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if skip(rel, d.IsDir()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{path: rel, mode: st.Mode & 0o7777, uid: int(st.Uid), gid: int(st.Gid)}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			e.kind = kindDir
		case syscall.S_IFREG:
			e.kind = kindFile
			if c, ok := inodes[st.Ino]; ok && st.Nlink > 1 {
				e.data = c
			} else {
				e.data = fileContent(p, st.Size)
				inodes[st.Ino] = e.data
			}
		case syscall.S_IFLNK:
			e.kind = kindSymlink
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFCHR, syscall.S_IFBLK:
			e.kind = kindChar
			if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
				e.kind = kindBlock
			}
			e.major, e.minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		case syscall.S_IFIFO:
			e.kind = kindFifo
		default:
			return nil // sockets do not go into layers
		}
		es = append(es, e)
		return nil
	})
	return es, err
}
