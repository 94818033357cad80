package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/moby/moby/api/types/system"
	digest "github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/cas"
	fimage "github.com/fusebox/fusebox/image"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodGet, "/images/json", d.imageList)
		r.Handle(http.MethodPost, "/images/load", d.imageLoad)
		r.Handle(http.MethodGet, "/images/get", d.imageSave)
		r.Handle(http.MethodPost, "/images/create", d.imageCreate)
		r.Handle(http.MethodPost, "/images/prune", d.imagePrune)
		r.Handle(http.MethodGet, "/images/{name...}/get", d.imageSaveOne)
		r.Handle(http.MethodGet, "/images/{name...}/json", d.imageInspect)
		r.Handle(http.MethodGet, "/images/{name...}/history", d.imageHistory)
		r.Handle(http.MethodPost, "/images/{name...}/tag", d.imageTag)
		r.Handle(http.MethodDelete, "/images/{name...}", d.imageDelete)
	})
	AddInfo(func(d *Daemon, r *http.Request, info *system.Info) error {
		imgs, err := d.store.Images(r.Context())
		if err != nil {
			return err
		}
		info.Images = len(imgs)
		return nil
	})
}

// errNoSuchImage is Docker's 404 for an image name or ID.
func errNoSuchImage(name string) error { return NotFoundf("No such image: %s", name) }

// ResolveImage finds the image a user's name means, as Docker does: a full
// "sha256:…" ID, then a reference (busybox → docker.io/library/busybox:latest),
// then an ID prefix. ref is the normalised reference when the name was
// one that is tagged, nil when it matched by ID or by a repository digest
// ("name@sha256:…", as pulled).
func (d *Daemon) ResolveImage(ctx context.Context, name string) (id digest.Digest, ref reference.Named, err error) {
	if dg, err := digest.Parse(name); err == nil {
		if _, err := d.store.Image(ctx, dg); err == nil {
			return dg, nil, nil
		}
		return "", nil, errNoSuchImage(name)
	}
	if r, perr := fimage.ParseReference(name); perr == nil {
		if dr, isDigest := r.(reference.Digested); isDigest {
			if id, ok, err := d.imageByRepoDigest(ctx, reference.TrimNamed(r).String()+"@"+dr.Digest().String()); err != nil || ok {
				return id, nil, err // a digest names the image, as an ID does
			}
		} else if id, err := d.store.Tag(ctx, r.String()); err == nil {
			return id, r, nil
		} else if !errors.Is(err, cas.ErrNotFound) {
			return "", nil, err
		}
		if !fimage.IsDigestPrefix(name) {
			return "", nil, errNoSuchImage(reference.FamiliarString(r))
		}
	} else if !fimage.IsDigestPrefix(name) {
		return "", nil, BadParameterf("invalid reference format: %s", strings.TrimPrefix(perr.Error(), fimage.ErrInvalidReference.Error()+": "))
	}
	id, err = d.store.ResolveImageID(ctx, name)
	switch {
	case errors.Is(err, cas.ErrNotFound):
		return "", nil, errNoSuchImage(name)
	case errors.Is(err, cas.ErrAmbiguous):
		return "", nil, BadParameterf("%v", err)
	case err != nil:
		return "", nil, err
	}
	return id, nil, nil
}

// imageByRepoDigest finds the image pulled or pushed as name@digest. The
// images are few, so a scan of their records is cheaper than keeping an
// index in step with every pull, push and removal.
func (d *Daemon) imageByRepoDigest(ctx context.Context, repoDigest string) (digest.Digest, bool, error) {
	recs, err := d.store.Images(ctx)
	if err != nil {
		return "", false, err
	}
	for _, rec := range recs {
		if slices.Contains(rec.RepoDigests, repoDigest) {
			return rec.ID, true, nil
		}
	}
	return "", false, nil
}

// imageConfig reads and decodes an image's config.
func (d *Daemon) imageConfig(ctx context.Context, id digest.Digest) ([]byte, *fimage.Config, error) {
	b, err := d.store.Blob(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	c, err := fimage.ParseConfig(b)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", id, err)
	}
	return b, c, nil
}

// tagsByImage maps each image ID to its full references, sorted.
func (d *Daemon) tagsByImage(ctx context.Context) (map[digest.Digest][]string, error) {
	tags, err := d.store.Tags(ctx)
	if err != nil {
		return nil, err
	}
	m := map[digest.Digest][]string{}
	for _, t := range tags {
		m[t.ID] = append(m[t.ID], t.Ref)
	}
	return m, nil
}

func familiarAll(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		if n, err := reference.ParseNormalizedNamed(r); err == nil {
			out = append(out, reference.FamiliarString(n))
		} else {
			out = append(out, r)
		}
	}
	return out
}

// imageFilters are the list filters this daemon understands.
type imageFilters struct {
	dangling  *bool
	reference []string
	labels    []string
}

func parseImageFilters(r *http.Request) (imageFilters, error) {
	var f imageFilters
	raw := r.URL.Query().Get("filters")
	if raw == "" {
		return f, nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		// API < 1.22 sent map[string][]string.
		var old map[string][]string
		if err2 := json.Unmarshal([]byte(raw), &old); err2 != nil {
			return f, BadParameterf("invalid filter: %v", err)
		}
		m = map[string]map[string]bool{}
		for k, vs := range old {
			m[k] = map[string]bool{}
			for _, v := range vs {
				m[k][v] = true
			}
		}
	}
	for k, vs := range m {
		for v := range vs {
			switch k {
			case "dangling":
				b, err := strconv.ParseBool(v)
				if err != nil {
					return f, BadParameterf("invalid filter 'dangling=%s'", v)
				}
				f.dangling = &b
			case "reference":
				f.reference = append(f.reference, v)
			case "label":
				f.labels = append(f.labels, v)
			default:
				return f, BadParameterf("invalid filter '%s'", k)
			}
		}
	}
	return f, nil
}

// matchReference is the reference filter: a familiar name or pattern
// (busybox, busybox:*, */app) against each tag.
func matchReference(patterns, refs []string) bool {
	for _, p := range patterns {
		for _, r := range familiarAll(refs) {
			repo := r
			// The tag's colon is the last one after the last slash: a
			// registry's host:port comes before it (127.0.0.1:5000/app).
			if i := strings.LastIndexByte(r, ':'); i > strings.LastIndexByte(r, '/') {
				repo = r[:i]
			}
			if ok, _ := path.Match(p, r); ok {
				return true
			}
			if ok, _ := path.Match(p, repo); ok {
				return true
			}
		}
	}
	return false
}

func matchLabels(want []string, labels map[string]string) bool {
	for _, w := range want {
		k, v, hasV := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

func (d *Daemon) imageList(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f, err := parseImageFilters(r)
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
	out := []image.Summary{}
	for _, rec := range recs {
		refs := tags[rec.ID]
		if f.dangling != nil && *f.dangling != (len(refs) == 0) {
			continue
		}
		if len(f.reference) > 0 && !matchReference(f.reference, refs) {
			continue
		}
		_, cfg, err := d.imageConfig(ctx, rec.ID)
		if err != nil {
			return err
		}
		if len(f.labels) > 0 && !matchLabels(f.labels, cfg.Config.Labels) {
			continue
		}
		created := rec.Created
		if cfg.Created != nil {
			created = *cfg.Created
		}
		s := image.Summary{
			ID:          rec.ID.String(),
			ParentID:    rec.Parent.String(),
			RepoTags:    familiarAll(refs),
			RepoDigests: familiarAll(rec.RepoDigests),
			Created:     created.Unix(),
			Size:        rec.Size,
			SharedSize:  -1,
			Containers:  -1,
			Labels:      cfg.Config.Labels,
		}
		if d.ImageUsers != nil {
			s.Containers = int64(len(d.ImageUsers(ctx, rec.ID)))
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b image.Summary) int { return int(b.Created - a.Created) })
	return WriteJSON(w, http.StatusOK, out)
}

func (d *Daemon) imageInspect(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, _, err := d.ResolveImage(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	resp, err := d.InspectImage(ctx, id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, resp)
}

// InspectImage is GET /images/{name}/json's answer for a stored image.
func (d *Daemon) InspectImage(ctx context.Context, id digest.Digest) (image.InspectResponse, error) {
	rec, err := d.store.Image(ctx, id)
	if err != nil {
		return image.InspectResponse{}, err
	}
	_, cfg, err := d.imageConfig(ctx, id)
	if err != nil {
		return image.InspectResponse{}, err
	}
	tags, err := d.tagsByImage(ctx)
	if err != nil {
		return image.InspectResponse{}, err
	}
	resp := image.InspectResponse{
		ID:           id.String(),
		RepoTags:     familiarAll(tags[id]),
		RepoDigests:  familiarAll(rec.RepoDigests),
		Author:       cfg.Author,
		Config:       &cfg.Config,
		Architecture: cfg.Architecture,
		Variant:      cfg.Variant,
		Os:           cfg.OS,
		OsVersion:    cfg.OSVersion,
		Size:         rec.Size,
		GraphDriver:  &storage.DriverData{Name: "fusebox", Data: map[string]string{}},
		RootFS:       image.RootFS{Type: cfg.RootFS.Type},
		Metadata:     image.Metadata{LastTagTime: rec.Stored},
	}
	if resp.RepoTags == nil {
		resp.RepoTags = []string{}
	}
	if cfg.Created != nil {
		resp.Created = cfg.Created.UTC().Format(time.RFC3339Nano)
	}
	if n := len(cfg.History); n > 0 {
		resp.Comment = cfg.History[n-1].Comment
	}
	for _, dd := range cfg.RootFS.DiffIDs {
		resp.RootFS.Layers = append(resp.RootFS.Layers, dd.String())
	}
	return resp, nil
}

func (d *Daemon) imageHistory(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, _, err := d.ResolveImage(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	items, err := d.History(ctx, id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, items)
}

// History lists an image's history newest first. The top entry carries
// the image's ID and tags; an entry that is the top of a local parent image
// carries that image's; the others are "<missing>", as in Docker.
func (d *Daemon) History(ctx context.Context, id digest.Digest) ([]image.HistoryResponseItem, error) {
	_, cfg, err := d.imageConfig(ctx, id)
	if err != nil {
		return nil, err
	}
	tags, err := d.tagsByImage(ctx)
	if err != nil {
		return nil, err
	}
	// Which history index is the top of which local image.
	owner := map[int]digest.Digest{len(cfg.History) - 1: id}
	for cur := id; ; {
		rec, err := d.store.Image(ctx, cur)
		if err != nil || rec.Parent == "" {
			break
		}
		_, pcfg, err := d.imageConfig(ctx, rec.Parent)
		if err != nil {
			break
		}
		owner[len(pcfg.History)-1] = rec.Parent
		cur = rec.Parent
	}
	var items []image.HistoryResponseItem
	layer := 0
	for i, h := range cfg.History {
		item := image.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer < len(cfg.RootFS.DiffIDs) {
			li, err := d.store.Layer(ctx, cfg.RootFS.DiffIDs[layer])
			if err != nil {
				return nil, err
			}
			item.Size = li.ContentSize
			layer++
		}
		if o, ok := owner[i]; ok {
			item.ID = o.String()
			item.Tags = familiarAll(tags[o])
		}
		items = append(items, item)
	}
	if len(cfg.History) == 0 {
		// No history at all: one row for the image, as Docker shows.
		item := image.HistoryResponseItem{ID: id.String(), Tags: familiarAll(tags[id])}
		if cfg.Created != nil {
			item.Created = cfg.Created.Unix()
		}
		rec, err := d.store.Image(ctx, id)
		if err != nil {
			return nil, err
		}
		item.Size = rec.Size
		items = append(items, item)
	}
	slices.Reverse(items)
	return items, nil
}

func (d *Daemon) imageTag(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, _, err := d.ResolveImage(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	ref, err := fimage.ParseRepoTag(q.Get("repo"), q.Get("tag"))
	if err != nil {
		return BadParameterf("%v", err)
	}
	if err := d.store.SetTag(ctx, ref.String(), id); err != nil {
		return err
	}
	d.log.Info("tagged image", "id", id, "ref", ref.String())
	d.Emit(events.ImageEventType, events.ActionTag, id.String(), map[string]string{"name": fimage.Familiar(ref)})
	w.WriteHeader(http.StatusCreated)
	return nil
}

func boolParam(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

func (d *Daemon) imageDelete(w http.ResponseWriter, r *http.Request) error {
	res, err := d.RemoveImage(r.Context(), r.PathValue("name"), boolParam(r, "force"))
	if err != nil {
		return err
	}
	for _, item := range res {
		if item.Untagged != "" {
			d.Emit(events.ImageEventType, events.ActionUnTag, item.Untagged, map[string]string{"name": item.Untagged})
		}
		if item.Deleted != "" {
			d.Emit(events.ImageEventType, events.ActionDelete, item.Deleted, map[string]string{"name": item.Deleted})
		}
	}
	return WriteJSON(w, http.StatusOK, res)
}

// RemoveImage is `rmi` with Docker's rules: a tagged name untags, and the
// image goes when its last tag does; an ID deletes the image and all its
// tags, which takes force when there are several; an image a container
// uses or that is mounted (Daemon.Mount) stays unless forced, and even
// forced it is only untagged; an image with children stays whatever force
// says.
func (d *Daemon) RemoveImage(ctx context.Context, name string, force bool) ([]image.DeleteResponse, error) {
	id, ref, err := d.ResolveImage(ctx, name)
	if err != nil {
		return nil, err
	}
	tags, err := d.tagsByImage(ctx)
	if err != nil {
		return nil, err
	}
	short := id.Encoded()[:12]
	var users []string
	if d.ImageUsers != nil {
		users = d.ImageUsers(ctx, id)
	}
	var out []image.DeleteResponse
	untag := func(full string) error {
		if err := d.store.DeleteTag(ctx, full); err != nil {
			return err
		}
		out = append(out, image.DeleteResponse{Untagged: familiarAll([]string{full})[0]})
		return nil
	}
	mounts := d.imageMounts(id)
	refs := tags[id]
	if ref != nil {
		if len(users) > 0 && !force && len(refs) == 1 {
			return nil, Conflictf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", name, shortID(users[0]), short)
		}
		if len(mounts) > 0 && !force && len(refs) == 1 {
			return nil, Conflictf("conflict: unable to remove repository reference %q (must force) - image %s is mounted at %s", name, short, mounts[0])
		}
		if err := untag(ref.String()); err != nil {
			return nil, err
		}
		if len(refs) > 1 {
			return out, nil
		}
	} else {
		if len(refs) > 1 && !force {
			return nil, Conflictf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", short)
		}
		if len(users) > 0 && !force {
			return nil, Conflictf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", short, shortID(users[0]))
		}
		if len(mounts) > 0 && !force {
			return nil, Conflictf("conflict: unable to delete %s (must be forced) - image is mounted at %s", short, mounts[0])
		}
		if children, err := d.children(ctx, id); err != nil {
			return nil, err
		} else if len(children) > 0 {
			return nil, Conflictf("conflict: unable to delete %s (cannot be forced) - image has dependent child images", short)
		}
		for _, t := range refs {
			if err := untag(t); err != nil {
				return nil, err
			}
		}
	}
	if len(users) > 0 || len(mounts) > 0 {
		return out, nil // forced: untagged, but the container or mount keeps its image
	}
	if children, err := d.children(ctx, id); err != nil {
		return nil, err
	} else if len(children) > 0 {
		return out, nil
	}
	if err := d.store.DeleteImage(ctx, id); err != nil {
		return nil, err
	}
	d.log.Info("deleted image", "id", id)
	return append(out, image.DeleteResponse{Deleted: id.String()}), nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (d *Daemon) children(ctx context.Context, id digest.Digest) ([]digest.Digest, error) {
	recs, err := d.store.Images(ctx)
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, r := range recs {
		if r.Parent == id {
			out = append(out, r.ID)
		}
	}
	return out, nil
}

func (d *Daemon) imagePrune(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f, err := parseImageFilters(r)
	if err != nil {
		return err
	}
	danglingOnly := f.dangling == nil || *f.dangling
	recs, err := d.store.Images(ctx)
	if err != nil {
		return err
	}
	tags, err := d.tagsByImage(ctx)
	if err != nil {
		return err
	}
	report := image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}
	// Children first, so that a chain of unused images goes in one prune.
	slices.SortFunc(recs, func(a, b cas.ImageRecord) int { return b.Created.Compare(a.Created) })
	for _, rec := range recs {
		if danglingOnly && len(tags[rec.ID]) > 0 {
			continue
		}
		if d.ImageUsers != nil && len(d.ImageUsers(ctx, rec.ID)) > 0 {
			continue
		}
		if len(d.imageMounts(rec.ID)) > 0 {
			continue
		}
		if ch, err := d.children(ctx, rec.ID); err != nil || len(ch) > 0 {
			continue
		}
		for _, t := range tags[rec.ID] {
			if err := d.store.DeleteTag(ctx, t); err != nil {
				return err
			}
			report.ImagesDeleted = append(report.ImagesDeleted, image.DeleteResponse{Untagged: familiarAll([]string{t})[0]})
		}
		before, err := d.store.DiskUsage(ctx)
		if err != nil {
			return err
		}
		if err := d.store.DeleteImage(ctx, rec.ID); err != nil {
			return err
		}
		after, err := d.store.DiskUsage(ctx)
		if err != nil {
			return err
		}
		report.SpaceReclaimed += uint64(max(0, before.ObjectBytes+before.InlineBytes-after.ObjectBytes-after.InlineBytes))
		report.ImagesDeleted = append(report.ImagesDeleted, image.DeleteResponse{Deleted: rec.ID.String()})
	}
	return WriteJSON(w, http.StatusOK, report)
}
