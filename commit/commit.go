package commit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/image"
)

// EmptyLayer is the diff_id of a layer tar with no entries (1024 zero
// bytes). Docker does not add such a layer to an image: its history entry
// is marked empty_layer instead.
const EmptyLayer = digest.Digest("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef")

// Request is one commit: the container's mount and config, and what the
// user asked for (docker commit's flags, the API's query parameters).
type Request struct {
	// Parent is the ID of the container's image.
	Parent digest.Digest
	// Mount is the container's writable mount and its change list.
	Mount Mount
	// Config is the container's config (ConfigFromContainer turns the
	// API's container.Config into it); nil takes the parent's. Docker
	// commits the container's config, not the image's: Cmd, Env, ... as
	// the container was created with them.
	Config *dockerspec.DockerOCIImageConfig
	// ConfigChanges are the --change instructions ("CMD ...", "ENV ..."),
	// applied in order after Config.
	ConfigChanges []string
	// Comment (-m) and Author (-a) go into the history entry; Author also
	// into the config.
	Comment, Author string
	// Repo and Tag name the new image, as the API's repo and tag
	// parameters: Repo may be "name:tag" when Tag is empty; both empty
	// leave it untagged (<none>).
	Repo, Tag string
	// Created is the image's creation time; zero means now.
	Created time.Time
	// Adopt lets the store take the upper dir's new and rewritten files
	// as its objects by link(2) instead of copying them (see
	// cas.IngestOptions.Adopt): no second copy of their bytes on disk.
	// Set it only when nothing can write the upper dir but through
	// layerfs opened afresh (a stopped container): layerfs copies such a
	// file before the next write, but a file open for writing during the
	// commit would change the store's object.
	Adopt bool
	// Progress, when set, is called now and then with the bytes of the
	// layer tar stored so far (see cas.IngestOptions.Progress).
	Progress func(read int64)
}

// Result is what a commit made.
type Result struct {
	// ID is the new image's ID, "sha256:<hex>" (docker commit prints it).
	ID digest.Digest
	// Layer is the new layer as stored (DiffID EmptyLayer and nothing
	// stored when the container changed nothing).
	Layer cas.LayerInfo
	// Ref is the full reference the image was tagged with, if any.
	Ref string
}

// Commit turns a container's changes into a new layer and a new image:
// the layer is streamed into the store from the change list, the config is
// the container's with the --change instructions applied, rootfs.diff_ids
// gets the new layer and history an entry with created_by (the container's
// command joined by spaces), the comment, the author and the time; the
// image record names the parent image, so `history` shows local IDs. Bad
// input (a --change line, a reference) is refused before anything is
// written; a failure later leaves the store as it was.
func Commit(ctx context.Context, store *cas.Store, req Request) (Result, error) {
	var ref reference.NamedTagged
	if req.Repo != "" || req.Tag != "" {
		if req.Repo == "" {
			return Result{}, fmt.Errorf("commit: %w: a tag needs a repository", image.ErrInvalidReference)
		}
		r, err := image.ParseRepoTag(req.Repo, req.Tag)
		if err != nil {
			return Result{}, fmt.Errorf("commit: %w", err)
		}
		ref = r
	}
	parentRaw, err := store.Blob(ctx, req.Parent)
	if err != nil {
		return Result{}, fmt.Errorf("commit: parent image %s: %w", req.Parent, err)
	}
	parent, err := image.ParseConfig(parentRaw)
	if err != nil {
		return Result{}, fmt.Errorf("commit: parent image %s: %w", req.Parent, err)
	}
	created := req.Created
	if created.IsZero() {
		created = time.Now()
	}
	created = created.UTC()
	cfg, err := childConfig(parent, req, created)
	if err != nil {
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	if _, err := Changes(req.Mount.Changes); err != nil {
		return Result{}, fmt.Errorf("commit: %w", err)
	}

	lease := store.NewLease()
	defer lease.Release(context.WithoutCancel(ctx))
	info, err := IngestLayer(ctx, store, req.Mount, cas.IngestOptions{Lease: lease, Adopt: req.Adopt, Progress: req.Progress})
	if err != nil {
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	h := &cfg.History[len(cfg.History)-1]
	if info.DiffID == EmptyLayer {
		h.EmptyLayer = true
	} else {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, info.DiffID)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return Result{}, fmt.Errorf("commit: encode config: %w", err)
	}
	id := digest.FromBytes(raw)
	_, blobErr := store.Blob(ctx, id)
	hadBlob := blobErr == nil
	if _, err := store.PutBlob(ctx, raw); err != nil {
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	rec := cas.ImageRecord{ID: id, DiffIDs: cfg.RootFS.DiffIDs, Parent: req.Parent, Created: created}
	if err := store.PutImage(ctx, rec); err != nil && !errors.Is(err, cas.ErrExists) {
		if !hadBlob {
			store.DeleteBlob(context.WithoutCancel(ctx), id)
		}
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	res := Result{ID: id, Layer: info}
	if ref != nil {
		if err := store.SetTag(ctx, ref.String(), id); err != nil {
			// The image stays, untagged, as docker commit leaves it when
			// tagging fails.
			return res, fmt.Errorf("commit: tag %s: %w", image.Familiar(ref), err)
		}
		res.Ref = ref.String()
	}
	return res, nil
}

// childConfig is the new image's config before its layer is known: the
// parent's, with the container's config, the --change instructions, the
// author, the time and a new history entry.
func childConfig(parent *image.Config, req Request, created time.Time) (*image.Config, error) {
	c := *parent
	c.RootFS.DiffIDs = slices.Clone(parent.RootFS.DiffIDs)
	c.History = slices.Clone(parent.History)
	if req.Config != nil {
		c.Config = cloneConfig(*req.Config)
	} else {
		c.Config = cloneConfig(parent.Config)
	}
	if err := image.ApplyChanges(&c.Config, req.ConfigChanges); err != nil {
		return nil, err
	}
	c.Created = &created
	c.Author = req.Author
	// Docker's created_by is the container's Cmd, before --change.
	createdBy := strings.Join(parent.Config.Cmd, " ")
	if req.Config != nil {
		createdBy = strings.Join(req.Config.Cmd, " ")
	}
	c.History = append(c.History, ocispec.History{
		Created:   &created,
		CreatedBy: createdBy,
		Author:    req.Author,
		Comment:   req.Comment,
	})
	return &c, nil
}

func cloneConfig(c dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	c.Env = slices.Clone(c.Env)
	c.Cmd = slices.Clone(c.Cmd)
	c.Entrypoint = slices.Clone(c.Entrypoint)
	c.ExposedPorts = maps.Clone(c.ExposedPorts)
	c.Volumes = maps.Clone(c.Volumes)
	c.Labels = maps.Clone(c.Labels)
	c.OnBuild = slices.Clone(c.OnBuild)
	c.Shell = slices.Clone(c.Shell)
	if c.Healthcheck != nil {
		h := *c.Healthcheck
		h.Test = slices.Clone(h.Test)
		c.Healthcheck = &h
	}
	return c
}

// ConfigFromContainer is the image config a commit carries over from a
// container's config (the API's container.Config): User, ExposedPorts,
// Env, Entrypoint, Cmd, Volumes, WorkingDir, Labels, StopSignal,
// ArgsEscaped, Healthcheck, OnBuild and Shell. What belongs to the running
// container only (hostname, stdio, the image name) is left out, as Docker
// leaves it out of image configs.
func ConfigFromContainer(cc *container.Config) *dockerspec.DockerOCIImageConfig {
	if cc == nil {
		return nil
	}
	c := &dockerspec.DockerOCIImageConfig{}
	c.User = cc.User
	if len(cc.ExposedPorts) > 0 {
		c.ExposedPorts = map[string]struct{}{}
		for p := range cc.ExposedPorts {
			c.ExposedPorts[p.String()] = struct{}{}
		}
	}
	c.Env = slices.Clone(cc.Env)
	c.Entrypoint = slices.Clone(cc.Entrypoint)
	c.Cmd = slices.Clone(cc.Cmd)
	c.Volumes = maps.Clone(cc.Volumes)
	c.WorkingDir = cc.WorkingDir
	c.Labels = maps.Clone(cc.Labels)
	c.StopSignal = cc.StopSignal
	c.ArgsEscaped = cc.ArgsEscaped //nolint:staticcheck // Docker keeps it for Windows images
	if cc.Healthcheck != nil {
		h := *cc.Healthcheck
		h.Test = slices.Clone(h.Test)
		c.Healthcheck = &h
	}
	c.OnBuild = slices.Clone(cc.OnBuild)
	c.Shell = slices.Clone(cc.Shell)
	return c
}
