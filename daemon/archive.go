package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	digest "github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/cas"
	fimage "github.com/fusebox/fusebox/image"
)

// MaxArchiveSize bounds an uploaded archive after decompression, so that a
// small compressed bomb cannot fill the disk while it is spooled.
var MaxArchiveSize int64 = 256 << 30

// progressWriter writes Docker's JSON message stream, flushing each line.
type progressWriter struct {
	w   http.ResponseWriter
	enc *json.Encoder
}

func newProgressWriter(w http.ResponseWriter) *progressWriter {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return &progressWriter{w: w, enc: json.NewEncoder(w)}
}

func (p *progressWriter) send(m jsonstream.Message) {
	_ = p.enc.Encode(m)
	if f, ok := p.w.(http.Flusher); ok {
		f.Flush()
	}
}

// fail reports an error inside the stream; the docker CLI prints it and
// exits 1.
func (p *progressWriter) fail(err error) {
	msg := err.Error()
	_ = p.enc.Encode(struct {
		jsonstream.Message
		ErrorMessage string `json:"error"`
	}{jsonstream.Message{Error: &jsonstream.Error{Message: msg}}, msg})
}

// spool copies an upload into a temp file under the root, decompressing
// gzip or zstd, and returns its path; the caller removes it.
func (d *Daemon) spool(r io.Reader) (string, error) {
	f, err := os.CreateTemp(d.tmpDir(), "upload-*.tar")
	if err != nil {
		return "", fmt.Errorf("spool upload: %w", err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", err
	}
	dr, err := fimage.Decompress(r)
	if err != nil {
		return fail(BadParameterf("%v", err))
	}
	defer dr.Close()
	limit := MaxArchiveSize
	var fs syscall.Statfs_t
	if err := syscall.Statfs(d.tmpDir(), &fs); err == nil {
		// Leave room for the store to ingest what the archive holds.
		limit = min(limit, int64(fs.Bavail)*int64(fs.Bsize)/2)
	}
	n, err := io.Copy(f, io.LimitReader(dr, limit+1))
	if err != nil {
		return fail(BadParameterf("%v: read archive: %v", fimage.ErrBadArchive, err))
	}
	if n > limit {
		return fail(BadParameterf("%v: larger than %d bytes, more than half the free space under %s", fimage.ErrBadArchive, limit, d.root))
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("spool upload: %w", err)
	}
	return name, nil
}

func (d *Daemon) imageLoad(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	quiet := boolParam(r, "quiet")
	p, err := d.spool(r.Body)
	if err != nil {
		return err
	}
	defer os.Remove(p)
	a, err := fimage.OpenArchive(p)
	if err != nil {
		return BadParameterf("%v", err)
	}
	defer a.Close()
	pw := newProgressWriter(w)
	loaded, err := d.LoadArchive(ctx, a, func(m jsonstream.Message) {
		if !quiet {
			pw.send(m)
		}
	})
	if err != nil {
		d.log.Error("load failed", "err", err)
		pw.fail(err)
		return nil
	}
	for _, l := range loaded {
		pw.send(jsonstream.Message{Stream: l + "\n"})
		name := strings.TrimPrefix(strings.TrimPrefix(l, "Loaded image: "), "Loaded image ID: ")
		d.Emit(events.ImageEventType, events.ActionLoad, name, map[string]string{"name": name})
	}
	return nil
}

// LoadArchive stores every image of an archive: all layers first (held by
// a lease, verified against their digests and diff_ids), then configs,
// image records and tags. A bad layer stops the load before any image or
// tag is written, and the lease's release removes the layers it brought,
// so the store is as it was. It returns Docker's "Loaded image" lines.
func (d *Daemon) LoadArchive(ctx context.Context, a *fimage.Archive, progress func(jsonstream.Message)) (loaded []string, err error) {
	lease := d.store.NewLease()
	defer func() {
		if rerr := lease.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
			err = rerr
		}
	}()
	done := map[digest.Digest]bool{}
	for _, img := range a.Images {
		for _, l := range img.Layers {
			if done[l.DiffID] {
				continue
			}
			done[l.DiffID] = true
			if err := d.ingestArchiveLayer(ctx, l, lease, progress); err != nil {
				return nil, err
			}
		}
	}
	for _, img := range a.Images {
		cfg, err := fimage.ParseConfig(img.Config)
		if err != nil {
			return nil, err
		}
		if _, err := d.store.PutBlob(ctx, img.Config); err != nil {
			return nil, err
		}
		rec := cas.ImageRecord{ID: img.ID, DiffIDs: cfg.RootFS.DiffIDs}
		if cfg.Created != nil {
			rec.Created = *cfg.Created
		}
		if err := d.store.PutImage(ctx, rec); err != nil && !errors.Is(err, cas.ErrExists) {
			return nil, err
		}
		for _, t := range img.RepoTags {
			if old, err := d.store.Tag(ctx, t); err == nil && old != img.ID {
				named, _ := reference.ParseNormalizedNamed(t)
				loaded = append(loaded, fmt.Sprintf("The image %s already exists, renaming the old one with ID %s to empty string", reference.FamiliarString(named), old))
			}
			if err := d.store.SetTag(ctx, t, img.ID); err != nil {
				return nil, err
			}
			named, _ := reference.ParseNormalizedNamed(t)
			loaded = append(loaded, "Loaded image: "+reference.FamiliarString(named))
		}
		if len(img.RepoTags) == 0 {
			loaded = append(loaded, "Loaded image ID: "+img.ID.String())
		}
		d.log.Info("loaded image", "id", img.ID, "tags", strings.Join(img.RepoTags, ","))
	}
	return loaded, nil
}

func (d *Daemon) ingestArchiveLayer(ctx context.Context, l fimage.Layer, lease *cas.Lease, progress func(jsonstream.Message)) error {
	rc, err := l.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	id := l.DiffID.Encoded()[:12]
	last := time.Time{}
	opts := cas.IngestOptions{
		DiffID: l.DiffID,
		Digest: l.Digest,
		Lease:  lease,
		Progress: func(n int64) {
			if time.Since(last) < 100*time.Millisecond {
				return
			}
			last = time.Now()
			progress(jsonstream.Message{Status: "Loading layer", ID: id, Progress: &jsonstream.Progress{Current: n, Total: l.Size}})
		},
	}
	if _, err := d.store.IngestLayer(ctx, rc, opts); err != nil {
		return fmt.Errorf("layer %s: %w", l.DiffID, err)
	}
	progress(jsonstream.Message{Status: "Loading layer", ID: id, Progress: &jsonstream.Progress{Current: l.Size, Total: l.Size}})
	return nil
}

func (d *Daemon) imageSave(w http.ResponseWriter, r *http.Request) error {
	return d.save(w, r, r.URL.Query()["names"])
}

func (d *Daemon) imageSaveOne(w http.ResponseWriter, r *http.Request) error {
	return d.save(w, r, []string{r.PathValue("name")})
}

func (d *Daemon) save(w http.ResponseWriter, r *http.Request, names []string) error {
	ctx := r.Context()
	if len(names) == 0 {
		return BadParameterf("no images given")
	}
	images, err := d.SaveImages(ctx, names)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := fimage.SaveArchive(ctx, w, images); err != nil {
		// The tar is cut short; the client sees a truncated archive.
		d.log.Error("save failed", "err", err)
		return err
	}
	return nil
}

// SaveImages resolves names into what SaveArchive writes. A name that is
// a tag saves the image under that tag; an ID saves it untagged, as
// `docker save` does. Several names of one image are merged.
func (d *Daemon) SaveImages(ctx context.Context, names []string) ([]fimage.SaveImage, error) {
	var out []fimage.SaveImage
	index := map[digest.Digest]int{}
	for _, n := range names {
		id, ref, err := d.ResolveImage(ctx, n)
		if err != nil {
			return nil, err
		}
		k, ok := index[id]
		if !ok {
			cfgBytes, cfg, err := d.imageConfig(ctx, id)
			if err != nil {
				return nil, err
			}
			img := fimage.SaveImage{Config: cfgBytes}
			for _, diffID := range cfg.RootFS.DiffIDs {
				li, err := d.store.Layer(ctx, diffID)
				if err != nil {
					return nil, err
				}
				diffID := diffID
				img.Layers = append(img.Layers, fimage.SaveLayer{DiffID: diffID, Size: li.Size, Open: func() (io.ReadCloser, error) {
					return d.store.LayerTar(ctx, diffID)
				}})
			}
			k = len(out)
			index[id] = k
			out = append(out, img)
		}
		if ref != nil {
			out[k].RepoTags = append(out[k].RepoTags, ref.String())
		}
	}
	return out, nil
}

// imageCreate is POST /images/create: import from the request body
// (fromSrc=-), or a pull (fromImage, in registry.go).
func (d *Daemon) imageCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("fromImage") != "" {
		return d.imagePull(w, r)
	}
	src := q.Get("fromSrc")
	if src == "" {
		return BadParameterf("fromSrc or fromImage is required")
	}
	if src != "-" {
		return BadParameterf("import from a URL is not supported: pass the tarball on stdin with '-'")
	}
	id, err := d.ImportImage(r.Context(), r.Body, q.Get("repo"), q.Get("tag"), q.Get("message"), q["changes"])
	if err != nil {
		return err
	}
	pw := newProgressWriter(w)
	pw.send(jsonstream.Message{Status: id.String()})
	return nil
}

// ImportImage makes a one-layer image from a rootfs tarball (plain, gzip
// or zstd). The name and changes are checked before the store is touched.
func (d *Daemon) ImportImage(ctx context.Context, body io.Reader, repo, tag, message string, changes []string) (digest.Digest, error) {
	var ref reference.NamedTagged
	if repo != "" {
		var err error
		if ref, err = fimage.ParseRepoTag(repo, tag); err != nil {
			return "", BadParameterf("%v", err)
		}
	}
	if _, err := fimage.ImportConfig(digest.FromString(""), time.Now(), "-", message, changes); err != nil {
		return "", BadParameterf("%v", err)
	}
	lease := d.store.NewLease()
	defer lease.Release(context.WithoutCancel(ctx))
	li, err := d.store.IngestLayer(ctx, body, cas.IngestOptions{Lease: lease})
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	cfg, err := fimage.ImportConfig(li.DiffID, now, "-", message, changes)
	if err != nil {
		return "", BadParameterf("%v", err)
	}
	id, err := d.store.PutBlob(ctx, cfg)
	if err != nil {
		return "", err
	}
	if err := d.store.PutImage(ctx, cas.ImageRecord{ID: id, DiffIDs: []digest.Digest{li.DiffID}, Created: now}); err != nil && !errors.Is(err, cas.ErrExists) {
		return "", err
	}
	if ref != nil {
		if err := d.store.SetTag(ctx, ref.String(), id); err != nil {
			return "", err
		}
	}
	d.log.Info("imported image", "id", id, "layer", li.DiffID)
	return id, nil
}
