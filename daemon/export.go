package daemon

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodGet, "/containers/{id}/export", d.containerExport)
		r.Handle(http.MethodHead, "/containers/{id}/archive", d.archiveStat)
		r.Handle(http.MethodGet, "/containers/{id}/archive", d.archiveGet)
		r.Handle(http.MethodPut, "/containers/{id}/archive", d.archivePut)
	})
}

// ErrNotDirectory is the 400 of a PUT /archive whose path is not a
// directory, with Docker's text.
var ErrNotDirectory = errors.New("extraction point is not a directory")

func init() { RegisterErrorStatus(ErrNotDirectory, http.StatusBadRequest) }

func (d *Daemon) containerExport(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	return d.withRootfs(r.Context(), c, func(m *ImageMount) error {
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		// Past the header an error can only cut the stream short, which
		// the client sees as a truncated tar.
		if err := WriteTree(r.Context(), w, m.Target, ""); err != nil {
			d.log.Warn("export", "container", c.snapshot().ID, "err", err)
		}
		return nil
	})
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

// containerPath resolves a path given for a container (absolute or
// relative to its root) to a host path inside the rootfs at root: every
// symlink on the way is resolved inside the rootfs, so no "..", absolute
// link or link chain leaves it. The last component is not followed (a
// link is copied as a link) unless the path ends in "/" or "/.".
func containerPath(root, p string) (string, error) {
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

// errNoSuchPath is Docker's 404 for a path missing in a container.
func errNoSuchPath(p, ctrName string) error {
	return NotFoundf("Could not find the file %s in container %s", p, ctrName)
}

// statPath is the PathStat of p in the rootfs at root, Docker's
// X-Docker-Container-Path-Stat.
func statPath(root, p, ctrName string) (string, container.PathStat, error) {
	full, err := containerPath(root, p)
	if err != nil {
		return "", container.PathStat{}, err
	}
	fi, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return "", container.PathStat{}, errNoSuchPath(p, ctrName)
	} else if err != nil {
		return "", container.PathStat{}, err
	}
	st := container.PathStat{Name: path.Base(path.Clean("/" + p)), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		resolved, err := securejoin.SecureJoin(root, path.Clean("/"+p))
		if err != nil {
			return "", container.PathStat{}, err
		}
		rel, _ := filepath.Rel(root, resolved)
		st.LinkTarget = "/" + filepath.ToSlash(rel)
		if rel == "." {
			st.LinkTarget = "/"
		}
	}
	return full, st, nil
}

func setStatHeader(w http.ResponseWriter, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

// archivePath is the path query parameter, required.
func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", BadParameterf("path cannot be empty")
	}
	return p, nil
}

// withArchivePath runs fn for an archive request (stat, get, put) on the
// container's mounted rootfs with the request's required path.
func (d *Daemon) withArchivePath(r *http.Request, fn func(c *ctr, m *ImageMount, p string) error) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	return d.withRootfs(r.Context(), c, func(m *ImageMount) error { return fn(c, m, p) })
}

func (d *Daemon) archiveStat(w http.ResponseWriter, r *http.Request) error {
	return d.withArchivePath(r, func(_ *ctr, m *ImageMount, p string) error {
		_, st, err := statPath(m.Target, p, r.PathValue("id"))
		if err != nil {
			return err
		}
		if err := setStatHeader(w, st); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
}

func (d *Daemon) archiveGet(w http.ResponseWriter, r *http.Request) error {
	return d.withArchivePath(r, func(c *ctr, m *ImageMount, p string) error {
		full, st, err := statPath(m.Target, p, r.PathValue("id"))
		if err != nil {
			return err
		}
		name := st.Name
		if strings.HasSuffix(p, "/.") {
			name = "."
		}
		if err := setStatHeader(w, st); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		if err := WriteTree(r.Context(), w, full, name); err != nil {
			d.log.Warn("archive", "container", c.snapshot().ID, "path", p, "err", err)
		}
		return nil
	})
}

func (d *Daemon) archivePut(w http.ResponseWriter, r *http.Request) error {
	opts := ExtractOptions{
		NoOverwriteDirNonDir: boolParam(r, "noOverwriteDirNonDir"),
		KeepOwner:            boolParam(r, "copyUIDGID"),
	}
	return d.withArchivePath(r, func(_ *ctr, m *ImageMount, p string) error {
		if m.ReadOnly() {
			return Conflictf("container rootfs is read-only")
		}
		dest, err := containerPath(m.Target, p+"/")
		if err != nil {
			return err
		}
		fi, err := os.Stat(dest)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return errNoSuchPath(p, r.PathValue("id"))
		} else if err != nil {
			return err
		}
		if !fi.IsDir() {
			return ErrNotDirectory
		}
		if err := ExtractTar(r.Context(), r.Body, m.Target, dest, opts); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
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
			return BadParameterf("invalid tar stream: %v", err)
		}
		entry := hdr.Name
		if opts.Rename != nil {
			entry = opts.Rename(entry)
		}
		name := path.Clean("/" + rel + "/" + entry)
		if name == "/" {
			continue
		}
		target, err := containerPath(root, name)
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
				return BadParameterf("cannot overwrite directory %q with non-directory %q", name, hdr.Name)
			}
			if opts.NoOverwriteDirNonDir && !existing.IsDir() && isDir {
				return BadParameterf("cannot overwrite non-directory %q with directory %q", name, hdr.Name)
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
			src, err := containerPath(root, path.Clean("/"+rel+"/"+link))
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
