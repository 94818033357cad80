package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/fusebox/fusebox/commit"
	fimage "github.com/fusebox/fusebox/image"
	"github.com/fusebox/fusebox/layerfs"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodGet, "/containers/{id}/changes", d.containerChanges)
		r.Handle(http.MethodPost, "/commit", d.containerCommit)
	})
	RegisterErrorStatus(fimage.ErrBadChange, http.StatusBadRequest)
	RegisterErrorStatus(fimage.ErrInvalidReference, http.StatusBadRequest)
	RegisterErrorStatus(commit.ErrUnstorable, http.StatusBadRequest)
}

// A running container's mount is the daemon's ImageMount; withRootfs and
// ContainerChanges find it there.
var _ rootfsMount = (*ImageMount)(nil)

// withRootfs runs fn on the container's mounted rootfs. A running
// container's mount is used as it is; a stopped one has its writable
// layer (upper dir and journal, kept in its state dir) mounted at its
// usual mount point for the call and unmounted after. The lifecycle lock
// is held throughout, so that no start, stop or remove changes the mount
// under fn.
func (d *Daemon) withRootfs(ctx context.Context, c *ctr, fn func(m *ImageMount) error) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	c.mu.Lock()
	m, _ := c.mount.(*ImageMount)
	rec, removing := c.rec, c.removing
	c.mu.Unlock()
	if removing {
		// Removed while this request waited for the lock.
		return errNoSuchContainer(rec.ID)
	}
	if m != nil {
		return fn(m)
	}
	m, err := d.Mount(ctx, MountSpec{Image: rec.ImageID, Target: filepath.Join(c.dir, "merged"), StateDir: c.dir})
	if err != nil {
		return fmt.Errorf("mount container rootfs: %w", err)
	}
	err = fn(m)
	if uerr := m.Unmount(); uerr != nil {
		d.log.Warn("unmount stopped container's rootfs", "id", rec.ID, "err", uerr)
	}
	return err
}

// ContainerChanges lists what a container changed in its rootfs, in
// `docker diff`'s order and meaning, from its journal: a running
// container's live one, a stopped container's file. The cost follows the
// changes, never the image: a stopped container is not mounted, the
// contents of its added directories are read from its upper dir, and those
// of a directory it renamed from the image from the image's file indexes.
func (d *Daemon) ContainerChanges(ctx context.Context, c *ctr) ([]layerfs.Change, error) {
	c.mu.Lock()
	m, _ := c.mount.(*ImageMount)
	c.mu.Unlock()
	if m != nil {
		changes, err := m.Changes()
		if err != nil {
			return nil, err
		}
		return commit.Diff(ctx, commit.Mount{Merged: m.Target, Upper: m.Upper, Changes: changes})
	}
	// The lifecycle lock keeps a start, a commit or a remove from changing
	// the upper dir while it is read.
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	defer c.unlock()
	c.mu.Lock()
	m, _ = c.mount.(*ImageMount)
	rec, removing := c.rec, c.removing
	c.mu.Unlock()
	if removing {
		return nil, errNoSuchContainer(rec.ID)
	}
	if m != nil { // started while this request waited for the lock
		changes, err := m.Changes()
		if err != nil {
			return nil, err
		}
		return commit.Diff(ctx, commit.Mount{Merged: m.Target, Upper: m.Upper, Changes: changes})
	}
	changes, err := layerfs.ReadJournal(filepath.Join(c.dir, "journal"))
	if errors.Is(err, fs.ErrNotExist) {
		return []layerfs.Change{}, nil // never started
	} else if err != nil {
		return nil, err
	}
	m2 := commit.Mount{Upper: filepath.Join(c.dir, "upper"), Changes: changes}
	// The image's indexes are needed only for a renamed directory; an
	// image that cannot be read fails the diff only then.
	if img, err := d.store.Image(ctx, rec.ImageID); err == nil {
		m2.Lower = commit.IndexLower(d.store, img.DiffIDs)
	} else {
		d.log.Warn("diff of a stopped container: image unreadable", "id", rec.ID, "image", rec.ImageID, "err", err)
	}
	return commit.Diff(ctx, m2)
}

func (d *Daemon) containerChanges(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	changes, err := d.ContainerChanges(r.Context(), c)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, commit.APIChanges(changes))
}

// CommitOptions are POST /commit's parameters.
type CommitOptions struct {
	// Repo and Tag name the new image (both empty: untagged).
	Repo, Tag string
	// Comment and Author go into the history entry.
	Comment, Author string
	// Changes are --change Dockerfile instructions.
	Changes []string
	// Pause freezes a running container while its layer is read, so that
	// the layer is one moment of it.
	Pause bool
	// Config, when set, overrides the container's config field by field
	// (the request body).
	Config *container.Config
	// Progress, when set, is told the bytes the new layer holds (the
	// regular files added or rewritten, known before the layer is
	// written) and then, now and then, the bytes of its tar stored so far.
	Progress func(read, total int64)
}

func (d *Daemon) containerCommit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	c, err := d.containers.get(q.Get("container"))
	if err != nil {
		return err
	}
	opts := CommitOptions{
		Repo: q.Get("repo"), Tag: q.Get("tag"), Comment: q.Get("comment"), Author: q.Get("author"),
		Changes: q["changes"], Pause: true,
	}
	if p := q.Get("pause"); p != "" {
		opts.Pause = boolParam(r, "pause")
	}
	var body container.Config
	if err := json.NewDecoder(r.Body).Decode(&body); err == nil {
		opts.Config = &body
	} else if !errors.Is(err, io.EOF) {
		return BadParameterf("invalid JSON in commit request: %v", err)
	}
	if boolParam(r, "progress") {
		return d.commitStream(w, r, c, opts)
	}
	id, err := d.CommitContainer(r.Context(), c, opts)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
}

// commitStream answers POST /commit?progress=1, fusebox's extension for
// its CLI: Docker's JSON message stream with "Committing layer" progress,
// then {"aux": {"ID": …}}. The stream starts with the first progress
// report, so that an error found before any work is done (a bad tag, a bad
// --change) is still an ordinary error answer with its status.
func (d *Daemon) commitStream(w http.ResponseWriter, r *http.Request, c *ctr, opts CommitOptions) error {
	var (
		mu    sync.Mutex
		pw    *progressWriter
		last  time.Time
		total int64
	)
	id := shortID(c.snapshot().ID)
	opts.Progress = func(n, t int64) {
		mu.Lock()
		defer mu.Unlock()
		total = t
		if time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		if pw == nil {
			pw = newProgressWriter(w)
		}
		pw.send(jsonstream.Message{Status: "Committing layer", ID: id, Progress: &jsonstream.Progress{Current: min(n, total), Total: total}})
	}
	imageID, err := d.CommitContainer(r.Context(), c, opts)
	mu.Lock()
	defer mu.Unlock()
	if pw == nil {
		if err != nil {
			return err
		}
		pw = newProgressWriter(w)
	}
	if err != nil {
		pw.fail(err)
		return nil
	}
	pw.send(jsonstream.Message{Status: "Committing layer", ID: id, Progress: &jsonstream.Progress{Current: total, Total: total}})
	aux := json.RawMessage(fmt.Sprintf(`{"ID":%q}`, imageID))
	pw.send(jsonstream.Message{Aux: &aux})
	return nil
}

// CommitContainer makes a new image of a container's image and its
// changes, as docker commit does, and returns its ID ("sha256:..."). A
// running container is paused meanwhile when opts.Pause is set; a stopped
// one is mounted for the commit. Bad input (a tag, a --change line) fails
// before anything is written, and a failed commit leaves the store as it
// was.
func (d *Daemon) CommitContainer(ctx context.Context, c *ctr, opts CommitOptions) (string, error) {
	rec := c.snapshot()
	cfg := mergeCommitConfig(opts.Config, rec.Config)
	req := commit.Request{
		Parent:        rec.ImageID,
		Config:        commit.ConfigFromContainer(cfg),
		ConfigChanges: opts.Changes,
		Comment:       opts.Comment,
		Author:        opts.Author,
		Repo:          opts.Repo,
		Tag:           opts.Tag,
	}
	// The checks commit.Commit makes first, made here too so that a
	// running container is not paused for a request that will fail.
	if req.Repo != "" {
		if _, err := fimage.ParseRepoTag(req.Repo, req.Tag); err != nil {
			return "", BadParameterf("%v", err)
		}
	} else if req.Tag != "" {
		return "", BadParameterf("invalid reference format: a tag needs a repository")
	}
	probe := commit.ConfigFromContainer(cfg)
	if err := fimage.ApplyChanges(probe, opts.Changes); err != nil {
		return "", BadParameterf("%v", err)
	}
	var res commit.Result
	err := d.withRootfs(ctx, c, func(m *ImageMount) error {
		if opts.Pause {
			resume, err := d.pauseForCommit(ctx, c)
			if err != nil {
				return err
			}
			defer resume()
		}
		changes, err := m.Changes()
		if err != nil {
			return err
		}
		req.Mount = commit.Mount{Merged: m.Target, Upper: m.Upper, Changes: changes}
		if opts.Progress != nil {
			total := newBytes(m.Upper, changes)
			opts.Progress(0, total)
			req.Progress = func(n int64) { opts.Progress(n, total) }
		}
		// A stopped container's upper dir has no writer but this mount,
		// made for the commit: the store may adopt its files (no second
		// copy on disk); layerfs copies one before it is written again.
		c.mu.Lock()
		req.Adopt = c.mount == nil
		c.mu.Unlock()
		if res, err = commit.Commit(ctx, d.store, req); err != nil {
			return err
		}
		// Before the unpause, as Docker orders the events.
		attrs := map[string]string{"comment": opts.Comment, "imageID": res.ID.String()}
		if res.Ref != "" {
			attrs["imageRef"] = res.Ref
		}
		d.emitContainer(c, events.ActionCommit, attrs)
		return nil
	})
	if err != nil {
		if res.ID == "" {
			return "", err
		}
		// The image was made and only its tag failed.
		d.log.Warn("commit", "container", rec.ID, "image", res.ID, "err", err)
		return "", err
	}
	return res.ID.String(), nil
}

// newBytes is what a commit's layer will hold in file bytes: the sizes of
// the regular files the changes added or rewrote, from the upper dir. An
// added directory's subtree is new, so its walk costs what the change
// does, never a walk of the image.
func newBytes(upper string, changes []layerfs.Change) int64 {
	var n int64
	for _, ch := range changes {
		if ch.Kind == layerfs.ChangeDelete {
			continue
		}
		p := filepath.Join(upper, ch.Path)
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
		case fi.Mode().IsRegular():
			n += fi.Size()
		case fi.IsDir() && ch.Kind == layerfs.ChangeAdd:
			_ = filepath.WalkDir(p, func(_ string, e fs.DirEntry, err error) error {
				if err == nil && e.Type().IsRegular() {
					if info, err := e.Info(); err == nil {
						n += info.Size()
					}
				}
				return nil
			})
		}
	}
	return n
}

// pauseForCommit freezes a running container and returns what thaws it;
// meanwhile the container shows as paused, with Docker's pause and
// unpause events. A container already paused (or not running) is left as
// it is.
func (d *Daemon) pauseForCommit(ctx context.Context, c *ctr) (func(), error) {
	c.mu.Lock()
	shim := c.shim
	if c.rec.State.Status != container.StateRunning || shim == nil {
		c.mu.Unlock()
		return func() {}, nil
	}
	if err := shim.Pause(ctx); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("pause container for commit: %w", err)
	}
	c.rec.State.Status = container.StatePaused
	c.mu.Unlock()
	d.emitContainer(c, events.ActionPause, nil)
	return func() {
		c.mu.Lock()
		err := shim.Resume(context.WithoutCancel(ctx))
		if err == nil && c.rec.State.Status == container.StatePaused {
			c.rec.State.Status = container.StateRunning
		}
		c.mu.Unlock()
		if err != nil {
			d.log.Warn("resume container after commit", "id", c.snapshot().ID, "err", err)
			return
		}
		d.emitContainer(c, events.ActionUnPause, nil)
	}, nil
}

// mergeCommitConfig is the config a commit carries: the request's, with
// what it leaves empty taken from the container's, as Docker merges them.
func mergeCommitConfig(user, ctrCfg *container.Config) *container.Config {
	if ctrCfg == nil {
		ctrCfg = &container.Config{}
	}
	if user == nil {
		return ctrCfg
	}
	out := *user
	if out.User == "" {
		out.User = ctrCfg.User
	}
	if len(out.ExposedPorts) == 0 {
		out.ExposedPorts = maps.Clone(ctrCfg.ExposedPorts)
	} else {
		for p := range ctrCfg.ExposedPorts {
			out.ExposedPorts[p] = struct{}{}
		}
	}
	if len(out.Env) == 0 {
		out.Env = slices.Clone(ctrCfg.Env)
	} else {
		out.Env = mergeEnv(ctrCfg.Env, out.Env)
	}
	if len(out.Labels) == 0 {
		out.Labels = maps.Clone(ctrCfg.Labels)
	} else {
		for k, v := range ctrCfg.Labels {
			if _, ok := out.Labels[k]; !ok {
				out.Labels[k] = v
			}
		}
	}
	if len(out.Cmd) == 0 && len(out.Entrypoint) == 0 {
		out.Cmd = slices.Clone(ctrCfg.Cmd)
		out.Entrypoint = slices.Clone(ctrCfg.Entrypoint)
	}
	if out.WorkingDir == "" {
		out.WorkingDir = ctrCfg.WorkingDir
	}
	if len(out.Volumes) == 0 {
		out.Volumes = maps.Clone(ctrCfg.Volumes)
	}
	if out.StopSignal == "" {
		out.StopSignal = ctrCfg.StopSignal
	}
	if out.Healthcheck == nil {
		out.Healthcheck = ctrCfg.Healthcheck
	}
	if len(out.OnBuild) == 0 {
		out.OnBuild = slices.Clone(ctrCfg.OnBuild)
	}
	if len(out.Shell) == 0 {
		out.Shell = slices.Clone(ctrCfg.Shell)
	}
	return &out
}
