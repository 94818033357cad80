package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fusebox/fusebox/volume"
)

// mountsFile, in a container's state directory, records the container's
// mount points (binds, volumes with their resolved names, tmpfs), written
// once at create; it goes when the directory goes.
const mountsFile = "mounts.json"

// planMounts reads what a create request asks to mount (Binds, Mounts,
// Tmpfs, VolumesFrom, and the Volumes of the config and the image, which
// by then are merged) into mount points, checking everything that can be
// checked without touching anything. Explicit mounts win over
// --volumes-from, which wins over anonymous volumes; two explicit mounts
// on one destination are Docker's "Duplicate mount point".
func (d *Daemon) planMounts(cfg *container.Config, hc *container.HostConfig) ([]volume.MountPoint, error) {
	var explicit []volume.MountPoint
	for _, b := range hc.Binds {
		mp, err := volume.ParseBind(b)
		if err != nil {
			return nil, classed(ErrBadParameter, "%w", err)
		}
		explicit = append(explicit, mp)
	}
	for _, m := range hc.Mounts {
		mp, err := volume.FromAPI(m)
		if err != nil {
			return nil, classed(ErrBadParameter, "%w", err)
		}
		explicit = append(explicit, mp)
	}
	for dest, opts := range hc.Tmpfs {
		mp, err := volume.ParseTmpfs(dest, opts)
		if err != nil {
			return nil, classed(ErrBadParameter, "%w", err)
		}
		explicit = append(explicit, mp)
	}
	seen := map[string]bool{}
	for _, mp := range explicit {
		if seen[mp.Destination] {
			return nil, BadParameterf("Duplicate mount point: %s", mp.Destination)
		}
		seen[mp.Destination] = true
	}
	out := explicit
	for _, from := range hc.VolumesFrom {
		name, mode, hasMode := strings.Cut(from, ":")
		if hasMode && mode != "ro" && mode != "rw" {
			return nil, BadParameterf("invalid mode for volumes-from: %s", mode)
		}
		other, err := d.containers.get(name)
		if err != nil {
			return nil, err
		}
		theirs, err := readMounts(other.dir)
		if err != nil {
			return nil, err
		}
		for _, mp := range theirs {
			if seen[mp.Destination] || mp.Type == mount.TypeTmpfs {
				continue
			}
			seen[mp.Destination] = true
			if hasMode {
				mp.RW = mode == "rw"
				mp.Mode = mode
			}
			mp.CreateSource = false
			out = append(out, mp)
		}
	}
	for dest := range cfg.Volumes {
		mp, err := volume.ParseBind(dest)
		if err != nil {
			return nil, classed(ErrBadParameter, "%w", err)
		}
		if mp.Type != mount.TypeVolume || mp.Name != "" {
			return nil, BadParameterf("invalid volume %q in the config: a path inside the container is expected", dest)
		}
		if seen[mp.Destination] {
			continue
		}
		seen[mp.Destination] = true
		out = append(out, mp)
	}
	volume.Sort(out)
	return out, nil
}

// createMounts makes what the mount points need before the container can
// exist: host directories for -v binds whose source is missing, the
// volumes (named ones made on first use, anonymous ones always), each
// counted as used by the container, and the copy of the image's content
// into new empty volumes. The targets are checked against the image's
// symlinks (a target that leaves the rootfs is refused). It records the
// mount points in dir. On failure it undoes what it made; on success it
// returns the undo, for a create that fails later.
func (d *Daemon) createMounts(ctx context.Context, id, dir string, imageID digest.Digest, mps []volume.MountPoint) (undo func(), err error) {
	if len(mps) == 0 {
		return func() {}, nil
	}
	vs, err := d.volumeStore()
	if err != nil {
		return nil, err
	}
	var madeDirs, madeVols []string
	cleanup := func() {
		vs.Release(id)
		for _, name := range madeVols {
			if _, err := vs.RemoveIfUnused(context.WithoutCancel(ctx), name); err != nil {
				d.log.Warn("remove volume after failed create", "volume", name, "err", err)
			}
		}
		for i := len(madeDirs) - 1; i >= 0; i-- {
			_ = os.Remove(madeDirs[i])
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	// Resolve the targets in the image before making anything, so that a
	// bad target leaves nothing behind.
	rootfs := filepath.Join(dir, "image-rootfs")
	im, err := d.Mount(ctx, MountSpec{Image: imageID, Target: rootfs})
	if err != nil {
		return nil, fmt.Errorf("mount image to prepare volumes: %w", err)
	}
	defer func() {
		if uerr := im.Unmount(); uerr != nil {
			d.log.Warn("unmount image after preparing volumes", "id", id, "err", uerr)
		}
		_ = os.Remove(rootfs)
	}()
	inImage := make([]string, len(mps))
	for i, mp := range mps {
		p, err := volume.Resolve(im.Target, mp.Destination)
		if errors.Is(err, volume.ErrTargetEscape) {
			return nil, BadParameterf("invalid mount target %s: it leaves the container's root filesystem through a symbolic link in the image", mp.Destination)
		}
		if err != nil {
			return nil, err
		}
		inImage[i] = p
	}
	for i := range mps {
		mp := &mps[i]
		switch mp.Type {
		case mount.TypeBind:
			if !mp.CreateSource {
				continue
			}
			made, err := mkdirAll(mp.Source)
			if err != nil {
				return nil, BadParameterf("create host path %s for bind mount: %v", mp.Source, err)
			}
			madeDirs = append(madeDirs, made...)
		case mount.TypeVolume:
			v, created, err := vs.Acquire(ctx, mp.Name, id, volume.CreateOptions{Labels: copyLabels(mp.Labels), Options: copyLabels(mp.DriverOptions)})
			if err != nil {
				return nil, classed(ErrBadParameter, "%w", err)
			}
			if created {
				madeVols = append(madeVols, v.Name)
			}
			mp.Name, mp.Source = v.Name, v.Mountpoint
			// A volume with driver options is a filesystem mounted
			// only while a container runs; nothing to seed now.
			if !mp.NoCopy && len(v.Options) == 0 {
				if _, err := volume.Seed(v, inImage[i]); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := writeMounts(dir, mps); err != nil {
		return nil, err
	}
	return cleanup, nil
}

func copyLabels(l map[string]string) map[string]string {
	if l == nil {
		return nil
	}
	out := make(map[string]string, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}

// mkdirAll is os.MkdirAll that returns the directories it made, outermost
// first, so that a failed create can take them back.
func mkdirAll(p string) ([]string, error) {
	var missing []string
	for q := p; ; q = filepath.Dir(q) {
		if _, err := os.Lstat(q); err == nil {
			break
		}
		missing = append([]string{q}, missing...)
		if q == filepath.Dir(q) {
			break
		}
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return nil, err
	}
	return missing, nil
}

func writeMounts(dir string, mps []volume.MountPoint) error {
	b, err := json.Marshal(mps)
	if err != nil {
		return fmt.Errorf("encode mount points: %w", err)
	}
	tmp := filepath.Join(dir, mountsFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write mount points: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, mountsFile)); err != nil {
		return fmt.Errorf("write mount points: %w", err)
	}
	return nil
}

// readMounts returns the mount points recorded in a container's state
// directory; none when it has none.
func readMounts(dir string) ([]volume.MountPoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, mountsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read mount points: %w", err)
	}
	var mps []volume.MountPoint
	if err := json.Unmarshal(b, &mps); err != nil {
		return nil, fmt.Errorf("decode mount points: %w", err)
	}
	return mps, nil
}

// apiMounts is a container's Mounts as inspect and ps show them.
func apiMounts(dir string) []container.MountPoint {
	out := []container.MountPoint{}
	mps, _ := readMounts(dir)
	for _, mp := range mps {
		out = append(out, mp.API())
	}
	return out
}

// mountSpecs are the runtime mounts of a container's mount points, for
// its start. A -v bind source that vanished since create is made again,
// as Docker does; a volume that vanished is an error; a volume with
// driver options gets its filesystem mounted (unmountVolumes undoes it).
func (d *Daemon) mountSpecs(ctx context.Context, id, dir string) (_ []specs.Mount, err error) {
	mps, err := readMounts(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.unmountVolumes(id)
		}
	}()
	var out []specs.Mount
	for _, mp := range mps {
		switch mp.Type {
		case mount.TypeBind:
			if _, err := os.Stat(mp.Source); errors.Is(err, fs.ErrNotExist) {
				if !mp.CreateSource {
					return nil, BadParameterf("invalid mount config for type \"bind\": bind source path does not exist: %s", mp.Source)
				}
				if err := os.MkdirAll(mp.Source, 0o755); err != nil {
					return nil, fmt.Errorf("create host path %s: %w", mp.Source, err)
				}
			}
		case mount.TypeVolume:
			vs, err := d.volumeStore()
			if err != nil {
				return nil, err
			}
			if err := vs.Mount(ctx, mp.Name, id); err != nil {
				return nil, err
			}
		}
		out = append(out, mp.Spec())
	}
	return out, nil
}

// removeVolumesKey marks a remove that also removes the container's
// anonymous volumes (`rm -v`).
type removeVolumesKey struct{}

func withRemoveVolumes(ctx context.Context) context.Context {
	return context.WithValue(ctx, removeVolumesKey{}, true)
}

// releaseMounts forgets a removed container as a user of its volumes, and
// removes its anonymous volumes when asked (`rm -v`, or --rm, as Docker
// does) and nobody else uses them.
func (d *Daemon) releaseMounts(ctx context.Context, rec containerRecord, dir string) {
	vs, err := d.volumeStore()
	if err != nil {
		return
	}
	vs.Release(rec.ID)
	anon, _ := ctx.Value(removeVolumesKey{}).(bool)
	if !anon && !rec.HostConfig.AutoRemove {
		return
	}
	mps, err := readMounts(dir)
	if err != nil {
		d.log.Warn("read mount points of removed container", "id", rec.ID, "err", err)
		return
	}
	for _, mp := range mps {
		if mp.Type != mount.TypeVolume || !mp.Anonymous {
			continue
		}
		if _, err := vs.RemoveIfUnused(context.WithoutCancel(ctx), mp.Name); err != nil {
			d.log.Warn("remove anonymous volume", "volume", mp.Name, "err", err)
		}
	}
}

// unmountVolumes undoes mountSpecs's volume mounts when the container
// has stopped (or failed to start).
func (d *Daemon) unmountVolumes(id string) {
	vs, err := d.volumeStore()
	if err != nil {
		return
	}
	if err := vs.Unmount(id); err != nil {
		d.log.Warn("unmount volumes", "id", id, "err", err)
	}
}

// usesVolume is ps's volume filter: the container mounts a volume of that
// name, or something at that destination.
func usesVolume(dir, v string) bool {
	mps, _ := readMounts(dir)
	for _, mp := range mps {
		if (mp.Name != "" && mp.Name == v) || mp.Destination == v {
			return true
		}
	}
	return false
}
