package daemon

import (
	"encoding/json"
	"net/http"
	"os"
	"time"

	"github.com/fusebox/fusebox/layerfs"
)

func init() {
	RegisterErrorStatus(layerfs.ErrBusy, http.StatusConflict)
	AddRoutes(func(d *Daemon, r *Router) {
		// fusebox's own endpoints (no Docker equivalent): image mounts
		// on the host, `fusebox mount` and `fusebox umount`.
		r.Handle(http.MethodGet, "/fusebox/mounts", d.mountList)
		r.Handle(http.MethodPost, "/fusebox/mounts", d.mountCreate)
		r.Handle(http.MethodDelete, "/fusebox/mounts", d.mountDelete)
		r.Handle(http.MethodGet, "/fusebox/mounts/changes", d.mountChanges)
	})
}

// MountRequest is the body of POST /fusebox/mounts.
type MountRequest struct {
	// Image is the image as the user names it (busybox, an ID prefix).
	Image string
	// Target is the mount point, an absolute path on the daemon's host.
	Target string
	// ReadWrite keeps a writable layer in the daemon's root for the life
	// of the mount; its changes are listed by GET /fusebox/mounts/changes.
	ReadWrite bool
}

// MountInfo describes a mount (GET /fusebox/mounts, POST's answer).
type MountInfo struct {
	Target string
	// Image is the name the mount was asked for; ImageID the image.
	Image     string
	ImageID   string
	ReadWrite bool
	// Upper is the writable layer's directory, empty when read-only.
	Upper   string
	Created time.Time
	// Container is false for a mount made with `fusebox mount`, true for
	// one the daemon made for a container (umount refuses those).
	Container bool
}

// MountChange is one line of GET /fusebox/mounts/changes, as in Docker's
// container changes: Kind 0 changed, 1 added, 2 deleted.
type MountChange struct {
	Path string
	Kind uint8
}

func (m *ImageMount) info() MountInfo {
	return MountInfo{
		Target: m.Target, Image: m.name, ImageID: m.Image.String(),
		ReadWrite: !m.ReadOnly(), Upper: m.Upper, Created: m.Created, Container: !m.host,
	}
}

func (d *Daemon) mountList(w http.ResponseWriter, r *http.Request) error {
	out := []MountInfo{}
	for _, m := range d.Mounts() {
		out = append(out, m.info())
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (d *Daemon) mountCreate(w http.ResponseWriter, r *http.Request) error {
	var req MountRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return BadParameterf("invalid mount request: %v", err)
	}
	if req.Image == "" || req.Target == "" {
		return BadParameterf("a mount needs an image and a target")
	}
	id, _, err := d.ResolveImage(r.Context(), req.Image)
	if err != nil {
		return err
	}
	spec := MountSpec{Image: id, Target: req.Target}
	if req.ReadWrite {
		if spec.StateDir, err = d.newStateDir(); err != nil {
			return err
		}
	}
	m, err := d.mount(r.Context(), spec, true, req.ReadWrite, req.Image)
	if err != nil {
		if spec.StateDir != "" {
			os.RemoveAll(spec.StateDir)
		}
		return err
	}
	return WriteJSON(w, http.StatusCreated, m.info())
}

func (d *Daemon) mountDelete(w http.ResponseWriter, r *http.Request) error {
	m, err := d.MountAt(r.URL.Query().Get("target"))
	if err != nil {
		return err
	}
	if !m.host {
		return Conflictf("%s is a container's root file system: stop the container instead", m.Target)
	}
	if err := m.Unmount(); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (d *Daemon) mountChanges(w http.ResponseWriter, r *http.Request) error {
	m, err := d.MountAt(r.URL.Query().Get("target"))
	if err != nil {
		return err
	}
	if m.ReadOnly() {
		return BadParameterf("%s is a read-only mount: it has no changes (mount with --rw)", m.Target)
	}
	changes, err := m.Changes()
	if err != nil {
		return err
	}
	out := make([]MountChange, 0, len(changes))
	for _, c := range changes {
		out = append(out, MountChange{Path: c.Path, Kind: uint8(c.Kind)})
	}
	return WriteJSON(w, http.StatusOK, out)
}
