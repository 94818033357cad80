// Package archive moves trees in and out of tar streams the way docker cp
// and docker export do, on either side of the API: the daemon packs and
// unpacks a container's files, the CLI a host directory. Every path a
// stream names is resolved inside the root it is unpacked into (Resolve),
// so no "../", absolute symlink or hard link leads out of it.
package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// ErrRefused is matched (errors.Is) by every error that refuses a stream
// or what unpacking it would do: a malformed tar, a directory that would
// replace a file or the reverse. The message is Docker's own text.
var ErrRefused = errors.New("archive refused")

type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return ErrRefused }

func refusef(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

// WriteTree writes the tree at src as a tar stream whose entries are named
// name/<path below src> (just <path below src> when name is empty, the
// root itself then left out, as docker export leaves it out). Hard links
// become tar links to the first name seen; sockets are left out.
func WriteTree(ctx context.Context, w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		entry := path.Join(name, filepath.ToSlash(rel))
		if name == "" && rel == "." {
			return nil
		}
		if name == "" {
			entry = filepath.ToSlash(rel)
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		var target string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", entry, err)
		}
		hdr.Name = entry
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = entry
				}
			}
		}
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyBuffer(tw, io.LimitReader(f, hdr.Size), buf); err != nil {
			return fmt.Errorf("%s: %w", entry, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// Resolve resolves a path given for a container (absolute or
// relative to its root) to a host path inside the rootfs at root: every
// symlink on the way is resolved inside the rootfs, so no "..", absolute
// link or link chain leaves it. The last component is not followed (a
// link is copied as a link) unless the path ends in "/" or "/.".
func Resolve(root, p string) (string, error) {
	clean := path.Clean("/" + p)
	if clean == "/" || strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") {
		return securejoin.SecureJoin(root, clean)
	}
	dir, base := path.Split(clean)
	parent, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, base), nil
}

// ExtractOptions say how ExtractTar treats what is already there and
// whose the new files are.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory by a
	// non-directory or the reverse (docker cp's default).
	NoOverwriteDirNonDir bool
	// KeepOwner keeps the tar's uid and gid (docker cp -a); else the files
	// belong to root.
	KeepOwner bool
	// Rename, when set, maps each entry's name before it is unpacked (the
	// CLI's cp renames the copied root to the destination's name).
	Rename func(name string) string
}

// ExtractTar unpacks a tar stream into dest, a directory inside the
// rootfs at root. Every entry's parent is resolved inside the rootfs, so
// "../" in a name or a symlink in the tree can't lead out of it; an
// existing symlink at an entry's own name is replaced, never written
// through. Without keepOwner the files belong to root, as docker cp makes
// them.
func ExtractTar(ctx context.Context, body io.Reader, root, dest string, opts ExtractOptions) error {
	tr := tar.NewReader(body)
	rel, err := filepath.Rel(root, dest)
	if err != nil {
		return err
	}
	type dirTime struct {
		path string
		t    time.Time
	}
	var dirs []dirTime
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return refusef("invalid tar stream: %v", err)
		}
		entry := hdr.Name
		if opts.Rename != nil {
			entry = opts.Rename(entry)
		}
		name := path.Clean("/" + rel + "/" + entry)
		if name == "/" {
			continue
		}
		target, err := Resolve(root, name)
		if err != nil {
			return err
		}
		if r, err := filepath.Rel(root, target); err != nil || r == "." || strings.HasPrefix(r, "../") {
			continue
		}
		existing, lerr := os.Lstat(target)
		if lerr == nil {
			isDir := hdr.Typeflag == tar.TypeDir
			if opts.NoOverwriteDirNonDir && existing.IsDir() && !isDir {
				return refusef("cannot overwrite directory %q with non-directory %q", name, hdr.Name)
			}
			if opts.NoOverwriteDirNonDir && !existing.IsDir() && isDir {
				return refusef("cannot overwrite non-directory %q with directory %q", name, hdr.Name)
			}
			if !(existing.IsDir() && isDir) {
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
		}
		mode := uint32(hdr.FileInfo().Mode().Perm()) | uint32(hdr.Mode)&(unix.S_ISUID|unix.S_ISGID|unix.S_ISVTX)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if lerr != nil || !existing.IsDir() {
				if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
					return err
				}
			}
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(f, tr, buf)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			link := hdr.Linkname
			if opts.Rename != nil {
				link = opts.Rename(link)
			}
			src, err := Resolve(root, path.Clean("/"+rel+"/"+link))
			if err != nil {
				return err
			}
			if err := os.Link(src, target); err != nil {
				return fmt.Errorf("link %s: %w", name, err)
			}
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
			if err := unix.Mknod(target, kind|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
				return err
			}
		default:
			continue // tar's other kinds (PAX globals, ...) carry no file
		}
		uid, gid := 0, 0
		if opts.KeepOwner {
			uid, gid = hdr.Uid, hdr.Gid
		}
		if err := os.Lchown(target, uid, gid); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeSymlink {
			continue
		}
		if hdr.Typeflag != tar.TypeLink {
			if err := unix.Fchmodat(unix.AT_FDCWD, target, mode, 0); err != nil {
				return err
			}
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTime{target, hdr.ModTime})
			continue
		}
		if hdr.Typeflag != tar.TypeLink {
			if err := os.Chtimes(target, hdr.ModTime, hdr.ModTime); err != nil {
				return err
			}
		}
	}
	// Directories' times last: their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Chtimes(dirs[i].path, dirs[i].t, dirs[i].t)
	}
	return nil
}
