package daemon

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"

	"github.com/fusebox/fusebox/api"
	"github.com/fusebox/fusebox/archive"
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

func init() {
	RegisterErrorStatus(ErrNotDirectory, http.StatusBadRequest)
	RegisterErrorStatus(archive.ErrRefused, http.StatusBadRequest)
}

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
		if err := archive.WriteTree(r.Context(), w, m.Target, ""); err != nil {
			d.log.Warn("export", "container", c.snapshot().ID, "err", err)
		}
		return nil
	})
}

// errNoSuchPath is Docker's 404 for a path missing in a container.
func errNoSuchPath(p, ctrName string) error {
	return NotFoundf("Could not find the file %s in container %s", p, ctrName)
}

// statPath is the PathStat of p in the rootfs at root, Docker's
// X-Docker-Container-Path-Stat.
func statPath(root, p, ctrName string) (string, container.PathStat, error) {
	full, err := archive.Resolve(root, p)
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
	w.Header().Set(api.PathStatHeader, base64.StdEncoding.EncodeToString(b))
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
		if err := archive.WriteTree(r.Context(), w, full, name); err != nil {
			d.log.Warn("archive", "container", c.snapshot().ID, "path", p, "err", err)
		}
		return nil
	})
}

func (d *Daemon) archivePut(w http.ResponseWriter, r *http.Request) error {
	opts := archive.ExtractOptions{
		NoOverwriteDirNonDir: boolParam(r, "noOverwriteDirNonDir"),
		KeepOwner:            boolParam(r, "copyUIDGID"),
	}
	return d.withArchivePath(r, func(_ *ctr, m *ImageMount, p string) error {
		if m.ReadOnly() {
			return Conflictf("container rootfs is read-only")
		}
		dest, err := archive.Resolve(m.Target, p+"/")
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
		if err := archive.ExtractTar(r.Context(), r.Body, m.Target, dest, opts); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
}
