package daemon

import (
	"net/http"

	"github.com/moby/moby/api/types/image"
	digest "github.com/opencontainers/go-digest"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodGet, "/system/df", d.systemDF)
		// fusebox's own endpoints (no Docker equivalent): the store's
		// accounting with dedup savings, and its consistency check.
		r.Handle(http.MethodGet, "/fusebox/store/usage", d.storeUsage)
		r.Handle(http.MethodPost, "/fusebox/store/fsck", d.storeFsck)
	})
}

// diskUsage is /system/df in the form API versions below 1.52 use, which
// the docker CLI 28 reads at 1.44.
type diskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []any
	Volumes    []any
	BuildCache []any
}

func (d *Daemon) systemDF(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := d.store.DiskUsage(ctx)
	if err != nil {
		return err
	}
	recs, err := d.store.Images(ctx)
	if err != nil {
		return err
	}
	tags, err := d.tagsByImage(ctx)
	if err != nil {
		return err
	}
	shared := map[digest.Digest]int64{}
	for _, iu := range u.Images {
		shared[iu.ID] = iu.SharedSize
	}
	du := diskUsage{LayersSize: u.ObjectBytes + u.InlineBytes, Images: []image.Summary{}, Containers: []any{}, Volumes: []any{}, BuildCache: []any{}}
	for _, rec := range recs {
		s := image.Summary{
			ID:          rec.ID.String(),
			RepoTags:    familiarAll(tags[rec.ID]),
			RepoDigests: familiarAll(rec.RepoDigests),
			Created:     rec.Created.Unix(),
			Size:        rec.Size,
			SharedSize:  shared[rec.ID],
		}
		if d.ImageUsers != nil {
			s.Containers = int64(len(d.ImageUsers(ctx, rec.ID)))
		}
		du.Images = append(du.Images, s)
	}
	du.Volumes = d.volumeUsage(ctx)
	return WriteJSON(w, http.StatusOK, du)
}

func (d *Daemon) storeUsage(w http.ResponseWriter, r *http.Request) error {
	u, err := d.store.DiskUsage(r.Context())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, u)
}

func (d *Daemon) storeFsck(w http.ResponseWriter, r *http.Request) error {
	rep, err := d.store.Fsck(r.Context())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, rep)
}
