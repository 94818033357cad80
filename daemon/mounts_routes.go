package daemon

import (
	"encoding/json"
	"net/http"
	"os"

	"github.com/fusebox/fusebox/api"
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

func (m *ImageMount) info() api.MountInfo {
	return api.MountInfo{
		Target: m.Target, Image: m.name, ImageID: m.Image.String(),
		ReadWrite: !m.ReadOnly(), Upper: m.Upper, Created: m.Created, Container: !m.host,
	}
}

func (d *Daemon) mountList(w http.ResponseWriter, r *http.Request) error {
	out := []api.MountInfo{}
	for _, m := range d.Mounts() {
		out = append(out, m.info())
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (d *Daemon) mountCreate(w http.ResponseWriter, r *http.Request) error {
	var req api.MountRequest
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
	out := make([]api.MountChange, 0, len(changes))
	for _, c := range changes {
		out = append(out, api.MountChange{Path: c.Path, Kind: uint8(c.Kind)})
	}
	return WriteJSON(w, http.StatusOK, out)
}
