package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	apivolume "github.com/moby/moby/api/types/volume"

	"github.com/fusebox/fusebox/volume"
)

// VolumesDir holds the volumes inside the root: <root>/volumes/<name>/_data.
const VolumesDir = "volumes"

func init() {
	RegisterErrorStatus(volume.ErrNotFound, http.StatusNotFound)
	RegisterErrorStatus(volume.ErrInUse, http.StatusConflict)
	RegisterErrorStatus(volume.ErrInvalidName, http.StatusBadRequest)
	RegisterErrorStatus(volume.ErrBadDriver, http.StatusNotFound)
	RegisterErrorStatus(volume.ErrBadOption, http.StatusBadRequest)
	RegisterErrorStatus(volume.ErrInvalidSpec, http.StatusBadRequest)
	RegisterErrorStatus(volume.ErrTargetEscape, http.StatusBadRequest)
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodGet, "/volumes", d.volumeList)
		r.Handle(http.MethodPost, "/volumes/create", d.volumeCreate)
		r.Handle(http.MethodPost, "/volumes/prune", d.volumePrune)
		r.Handle(http.MethodGet, "/volumes/{name}", d.volumeInspect)
		r.Handle(http.MethodDelete, "/volumes/{name}", d.volumeDelete)
	})
}

// volumeState is the daemon's volume store, opened on first use (by a
// route or by a container's create or start, whichever comes first), when
// the containers are loaded and can be counted as users.
type volumeState struct {
	once  sync.Once
	store *volume.Store
	err   error
}

// volumeStore opens the volumes under the root and counts the containers
// that use them, once.
func (d *Daemon) volumeStore() (*volume.Store, error) {
	d.volumes.once.Do(func() {
		s, err := volume.Open(filepath.Join(d.root, VolumesDir))
		if err != nil {
			d.volumes.err = err
			return
		}
		for _, c := range d.containers.all() {
			mps, err := readMounts(c.dir)
			if err != nil {
				d.log.Warn("read mount points", "id", c.snapshot().ID, "err", err)
				continue
			}
			for _, mp := range mps {
				if mp.Name != "" {
					s.Ref(mp.Name, c.snapshot().ID)
				}
			}
		}
		d.volumes.store = s
	})
	return d.volumes.store, d.volumes.err
}

// apiVolume is a volume as the API shows it.
func apiVolume(v volume.Volume) apivolume.Volume {
	return apivolume.Volume{
		Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint,
		Labels: v.Labels, Options: v.Options, Scope: "local",
		CreatedAt: v.CreatedAt.Format(time.RFC3339),
	}
}

func (d *Daemon) volumeCreate(w http.ResponseWriter, r *http.Request) error {
	var req apivolume.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return BadParameterf("invalid JSON in volume create request: %v", err)
	}
	vs, err := d.volumeStore()
	if err != nil {
		return err
	}
	v, created, err := vs.Create(r.Context(), req.Name, volume.CreateOptions{Driver: req.Driver, Labels: req.Labels, Options: req.DriverOpts})
	if err != nil {
		return err
	}
	if created {
		d.Emit(events.VolumeEventType, events.ActionCreate, v.Name, map[string]string{"driver": v.Driver})
	}
	return WriteJSON(w, http.StatusCreated, apiVolume(v))
}

func (d *Daemon) volumeInspect(w http.ResponseWriter, r *http.Request) error {
	vs, err := d.volumeStore()
	if err != nil {
		return err
	}
	v, err := vs.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, apiVolume(v))
}

func (d *Daemon) volumeDelete(w http.ResponseWriter, r *http.Request) error {
	vs, err := d.volumeStore()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := vs.Remove(r.Context(), name, boolParam(r, "force")); err != nil {
		return err
	}
	d.Emit(events.VolumeEventType, events.ActionDestroy, name, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// matchVolume applies `volume ls` filters: dangling, name (a substring),
// label (key or key=value), driver.
func matchVolume(v volume.Volume, users int, f map[string][]string) (bool, error) {
	for _, want := range f["dangling"] {
		b, err := strconv.ParseBool(want)
		if err != nil {
			return false, BadParameterf("invalid filter 'dangling=%s'", want)
		}
		if b != (users == 0) {
			return false, nil
		}
	}
	if names := f["name"]; len(names) > 0 {
		ok := false
		for _, n := range names {
			ok = ok || strings.Contains(v.Name, n)
		}
		if !ok {
			return false, nil
		}
	}
	if drivers := f["driver"]; len(drivers) > 0 {
		ok := false
		for _, n := range drivers {
			ok = ok || n == v.Driver
		}
		if !ok {
			return false, nil
		}
	}
	if !matchLabels(f["label"], v.Labels) {
		return false, nil
	}
	for _, l := range f["label!"] {
		if matchLabels([]string{l}, v.Labels) {
			return false, nil
		}
	}
	return true, nil
}

func (d *Daemon) volumeList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilterArgs(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	for k := range f {
		switch k {
		case "dangling", "name", "label", "label!", "driver":
		default:
			return BadParameterf("invalid filter '%s'", k)
		}
	}
	vs, err := d.volumeStore()
	if err != nil {
		return err
	}
	all, err := vs.List(r.Context())
	if err != nil {
		return err
	}
	resp := apivolume.ListResponse{Volumes: []apivolume.Volume{}, Warnings: []string{}}
	for _, v := range all {
		ok, err := matchVolume(v, len(vs.Users(v.Name)), f)
		if err != nil {
			return err
		}
		if ok {
			resp.Volumes = append(resp.Volumes, apiVolume(v))
		}
	}
	return WriteJSON(w, http.StatusOK, resp)
}

// volumePrune removes the volumes no container uses: only anonymous ones
// unless the filter all=true is given, as Docker 23 and later do.
func (d *Daemon) volumePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilterArgs(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	all := false
	for _, v := range f["all"] {
		if all, err = strconv.ParseBool(v); err != nil {
			return BadParameterf("invalid filter 'all=%s'", v)
		}
	}
	delete(f, "all")
	for k := range f {
		if k != "label" && k != "label!" {
			return BadParameterf("invalid filter '%s'", k)
		}
	}
	vs, err := d.volumeStore()
	if err != nil {
		return err
	}
	vols, err := vs.List(r.Context())
	if err != nil {
		return err
	}
	report := apivolume.PruneReport{VolumesDeleted: []string{}}
	for _, v := range vols {
		if !all && !v.Anonymous() {
			continue
		}
		if ok, _ := matchVolume(v, 0, f); !ok {
			continue
		}
		size := volume.Size(v)
		removed, err := vs.RemoveIfUnused(context.WithoutCancel(r.Context()), v.Name)
		if err != nil {
			d.log.Warn("prune volume", "volume", v.Name, "err", err)
			continue
		}
		if !removed {
			continue
		}
		d.Emit(events.VolumeEventType, events.ActionDestroy, v.Name, nil)
		report.VolumesDeleted = append(report.VolumesDeleted, v.Name)
		if size > 0 {
			report.SpaceReclaimed += uint64(size)
		}
	}
	d.Emit(events.VolumeEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)})
	return WriteJSON(w, http.StatusOK, report)
}

// volumeUsage is /system/df's Volumes: each volume with its size and the
// number of containers using it.
func (d *Daemon) volumeUsage(ctx context.Context) []any {
	out := []any{}
	vs, err := d.volumeStore()
	if err != nil {
		return out
	}
	vols, err := vs.List(ctx)
	if err != nil {
		d.log.Warn("list volumes for df", "err", err)
		return out
	}
	for _, v := range vols {
		av := apiVolume(v)
		av.UsageData = &apivolume.UsageData{Size: volume.Size(v), RefCount: int64(len(vs.Users(v.Name)))}
		out = append(out, av)
	}
	return out
}
