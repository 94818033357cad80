package daemon

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs"
)

// MountsDir holds, inside the daemon's root, the state (upper and work
// dirs, journal) of writable mounts made with `fusebox mount --rw`, which
// live until they are unmounted or the daemon stops.
const MountsDir = "mounts"

// mountFsType is the file system type every mount of the daemon shows in
// /proc/self/mountinfo (fuse.<subtype>).
const mountFsType = "fuse.fusebox"

// MountSpec says which image to mount where. It is plain data.
type MountSpec struct {
	// Image is the image whose layers are the lowers.
	Image digest.Digest
	// Target is the mount point, an absolute path; it is created if
	// missing.
	Target string
	// StateDir, when set, makes the mount writable: StateDir/upper,
	// StateDir/work and StateDir/journal hold the changes, and are reused
	// when present, so that a stopped container's upper dir is mounted
	// again with every file it wrote. Empty: a read-only mount.
	StateDir string
}

// ImageMount is an image mounted by the daemon. The daemon serves it until
// Unmount or until the daemon closes.
type ImageMount struct {
	// Target is the mount point. Upper and Work are the writable layer's
	// directories (empty for a read-only mount).
	Target, Upper, Work string
	// Image is the mounted image; StateDir is MountSpec.StateDir.
	Image    digest.Digest
	StateDir string
	// Created is when the mount was made.
	Created time.Time

	d     *Daemon
	srv   *layerfs.Server
	lease *cas.Lease
	// host: made through the API (`fusebox mount`); owned: StateDir is
	// the daemon's own scratch dir, removed at unmount.
	host, owned bool
	name        string // the image as the user named it (API mounts)

	once       sync.Once
	unmounting atomic.Bool
	err        error
}

// mountManager keeps the daemon's mounts by target.
type mountManager struct {
	layers *layerfs.CASLayers

	mu     sync.Mutex
	byDir  map[string]*ImageMount // nil value: a mount being made
	chains map[string][]layerfs.Source
}

// openMounts starts the mount manager: it unmounts what a daemon that died
// left mounted from this root and removes the scratch state of its mounts.
func (d *Daemon) openMounts(ctx context.Context) error {
	d.mounts = &mountManager{
		layers: layerfs.NewCASLayers(d.store, slog.NewLogLogger(d.log.Handler(), slog.LevelError)),
		byDir:  map[string]*ImageMount{},
		chains: map[string][]layerfs.Source{},
	}
	var stale []string
	if name := d.fsName(); name != "fusebox" {
		var err error
		if stale, err = staleMounts(name); err != nil {
			return fmt.Errorf("find stale mounts: %w", err)
		}
	} else {
		// Mounts of this root cannot be told from anyone else's.
		d.log.Warn("root path cannot name its mounts; stale mounts are not cleaned at start", "root", d.root)
	}
	for _, dir := range stale {
		// The serving process is gone, so the mount answers ENOTCONN:
		// detach it; nothing can be waiting on it.
		if err := unix.Unmount(dir, 0); err != nil {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				d.log.Warn("cannot unmount stale mount", "dir", dir, "err", err)
				continue
			}
		}
		d.log.Info("unmounted stale mount", "dir", dir)
	}
	if err := os.RemoveAll(filepath.Join(d.root, MountsDir)); err != nil {
		return fmt.Errorf("clean mount state: %w", err)
	}
	d.OnClose(d.closeMounts)
	return nil
}

// fsName is the "device" of the daemon's mounts in /proc/self/mountinfo:
// it names the root, so that a restarted daemon finds the mounts its dead
// predecessor left wherever they are, and no other daemon's.
func (d *Daemon) fsName() string {
	if strings.ContainsAny(d.root, ",\n") {
		return "fusebox" // not expressible as a mount option
	}
	return "fusebox@" + d.root
}

// staleMounts lists the mount points of type fuse.fusebox whose source is
// fsName.
func staleMounts(fsName string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - type source superoptions
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 5 || len(fields) < sep+3 {
			continue
		}
		if fields[sep+1] != mountFsType || unescapeMountinfo(fields[sep+2]) != fsName {
			continue
		}
		out = append(out, unescapeMountinfo(fields[4]))
	}
	// Innermost first, so that nested mounts come off before their parent.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + c - '0'
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// closeMounts unmounts everything when the daemon shuts down and drops the
// merged views it built.
func (d *Daemon) closeMounts() error {
	m := d.mounts
	m.mu.Lock()
	var all []*ImageMount
	for _, im := range m.byDir {
		if im != nil {
			all = append(all, im)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, im := range all {
		errs = append(errs, im.Unmount())
	}
	m.mu.Lock()
	for _, chain := range m.chains {
		layerfs.ForgetChain(chain)
	}
	m.chains = map[string][]layerfs.Source{}
	m.mu.Unlock()
	return errors.Join(errs...)
}

// Mount mounts an image's layers at spec.Target, read-only or, with a
// StateDir, writable, and serves it until Unmount or the daemon's Close.
// The image's layers stay in the store while it is mounted: rmi refuses a
// mounted image unless forced, and even then keeps it. Every mount of one
// image shares one merged view of its layers.
func (d *Daemon) Mount(ctx context.Context, spec MountSpec) (*ImageMount, error) {
	return d.mount(ctx, spec, false, false, "")
}

func (d *Daemon) mount(ctx context.Context, spec MountSpec, host, owned bool, name string) (*ImageMount, error) {
	if !filepath.IsAbs(spec.Target) {
		return nil, BadParameterf("mount point %q is not an absolute path", spec.Target)
	}
	target := filepath.Clean(spec.Target)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return nil, BadParameterf("mount point %s: %w", target, err)
	}
	if resolved, err := filepath.EvalSymlinks(target); err == nil {
		target = resolved
	}
	mm := d.mounts
	mm.mu.Lock()
	if _, busy := mm.byDir[target]; busy {
		mm.mu.Unlock()
		return nil, errBusy(target)
	}
	mm.byDir[target] = nil // reserved while the mount is made
	mm.mu.Unlock()
	im, err := d.doMount(ctx, spec, target, host, owned, name)
	mm.mu.Lock()
	if err != nil {
		delete(mm.byDir, target)
	} else if _, ok := mm.byDir[target]; ok {
		mm.byDir[target] = im
	}
	mm.mu.Unlock()
	if err != nil {
		return nil, err
	}
	d.log.Info("mounted image", "image", spec.Image, "target", target, "rw", spec.StateDir != "")
	return im, nil
}

func (d *Daemon) doMount(ctx context.Context, spec MountSpec, target string, host, owned bool, name string) (*ImageMount, error) {
	rec, err := d.store.Image(ctx, spec.Image)
	if errors.Is(err, cas.ErrNotFound) {
		return nil, errNoSuchImage(spec.Image.String())
	} else if err != nil {
		return nil, err
	}
	if len(rec.DiffIDs) == 0 {
		return nil, BadParameterf("image %s has no layers to mount", shortID(rec.ID.String()))
	}
	lease := d.store.NewLease()
	for _, l := range rec.DiffIDs {
		lease.Hold(l)
	}
	// The image may have been deleted between the lookup and the hold;
	// its layers are held now, so one more look settles it.
	if _, err := d.store.Image(ctx, spec.Image); err != nil {
		lease.Release(context.WithoutCancel(ctx))
		if errors.Is(err, cas.ErrNotFound) {
			return nil, errNoSuchImage(spec.Image.String())
		}
		return nil, err
	}
	im := &ImageMount{Target: target, Image: rec.ID, StateDir: spec.StateDir, Created: time.Now(), d: d, lease: lease,
		host: host, owned: owned, name: name}
	chain := d.mounts.layers.Chain(rec.DiffIDs)
	opts := layerfs.MountOptions{
		Lowers: chain,
		FsName: d.fsName(),
		// layerfs's and go-fuse's diagnostics; a corrupt object is
		// logged as an error by the CASLayers itself.
		Logger: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
	if spec.StateDir != "" {
		im.Upper, im.Work = filepath.Join(spec.StateDir, "upper"), filepath.Join(spec.StateDir, "work")
		for _, dir := range []string{im.Upper, im.Work} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				lease.Release(context.WithoutCancel(ctx))
				return nil, fmt.Errorf("mount state: %w", err)
			}
		}
		opts.UpperDir, opts.WorkDir = im.Upper, im.Work
		opts.JournalPath = filepath.Join(spec.StateDir, "journal")
	}
	srv, err := layerfs.Mount(ctx, target, opts)
	if err != nil {
		lease.Release(context.WithoutCancel(ctx))
		if errors.Is(err, layerfs.ErrBusy) {
			return nil, errBusy(target)
		}
		return nil, fmt.Errorf("mount %s: %w", shortID(rec.ID.String()), err)
	}
	im.srv = srv
	go im.watch()
	key := chainKeyOf(rec.DiffIDs)
	d.mounts.mu.Lock()
	d.mounts.chains[key] = chain
	d.mounts.mu.Unlock()
	return im, nil
}

func chainKeyOf(ds []digest.Digest) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte(' ')
	}
	return b.String()
}

// errBusy is the 409 for a mount point that is already one; it matches
// layerfs.ErrBusy.
func errBusy(target string) error {
	return &classedError{msg: fmt.Sprintf("mount point %s is busy", target), class: ErrConflict, cause: layerfs.ErrBusy}
}

// ReadOnly reports whether the mount has no writable layer.
func (m *ImageMount) ReadOnly() bool { return m.Upper == "" }

// Passthrough reports whether the kernel reads lower files directly
// (FUSE passthrough).
func (m *ImageMount) Passthrough() bool { return m.srv.Passthrough() }

// Changes lists what the mount changed, from its journal, in O(changes):
// paths added, changed and deleted, with `docker diff`'s meanings, sorted
// by path. A read-only mount has none.
func (m *ImageMount) Changes() ([]layerfs.Change, error) {
	j := m.srv.Journal()
	if j == nil {
		return nil, nil
	}
	return j.Changes(), nil
}

// Unmount stops serving the mount and releases its layers. It never hangs
// on open files: they are detached and then fail with ENOTCONN. It is
// idempotent; the upper dir, work dir and journal stay (except the scratch
// state of a `fusebox mount --rw` the daemon made itself).
func (m *ImageMount) Unmount() error {
	m.unmounting.Store(true)
	m.once.Do(func() { m.release(m.srv.Unmount()) })
	return m.err
}

// watch notices a mount unmounted behind the daemon's back (umount DIR
// run by hand) and lets go of its layers and record.
func (m *ImageMount) watch() {
	m.srv.Wait()
	if m.unmounting.Load() {
		return
	}
	m.once.Do(func() {
		m.d.log.Info("mount unmounted from outside", "target", m.Target)
		m.release(m.srv.Journal().Close())
	})
}

// release ends a mount whose file system is no longer served: its layers,
// its scratch state, its record. err is how the serving ended.
func (m *ImageMount) release(err error) {
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	ctx := context.Background()
	if err := m.lease.Release(ctx); err != nil {
		errs = append(errs, fmt.Errorf("release layers: %w", err))
	}
	if m.owned {
		if err := os.RemoveAll(m.StateDir); err != nil {
			errs = append(errs, fmt.Errorf("remove mount state: %w", err))
		}
	}
	mm := m.d.mounts
	mm.mu.Lock()
	if mm.byDir[m.Target] == m {
		delete(mm.byDir, m.Target)
	}
	mm.mu.Unlock()
	m.err = errors.Join(errs...)
	if m.err != nil {
		m.d.log.Warn("unmount", "target", m.Target, "err", m.err)
	} else {
		m.d.log.Info("unmounted image", "image", m.Image, "target", m.Target)
	}
}

// Mounts lists the daemon's mounts, sorted by target.
func (d *Daemon) Mounts() []*ImageMount {
	d.mounts.mu.Lock()
	defer d.mounts.mu.Unlock()
	var out []*ImageMount
	for _, im := range d.mounts.byDir {
		if im != nil {
			out = append(out, im)
		}
	}
	slices.SortFunc(out, func(a, b *ImageMount) int { return strings.Compare(a.Target, b.Target) })
	return out
}

// MountAt is the daemon's mount at dir; a 404 error ("No such mount: dir")
// when there is none.
func (d *Daemon) MountAt(dir string) (*ImageMount, error) {
	target := filepath.Clean(dir)
	if resolved, err := filepath.EvalSymlinks(target); err == nil {
		target = resolved
	}
	d.mounts.mu.Lock()
	im := d.mounts.byDir[target]
	d.mounts.mu.Unlock()
	if im == nil {
		return nil, NotFoundf("No such mount: %s", dir)
	}
	return im, nil
}

// imageMounts lists the mount points of the image id.
func (d *Daemon) imageMounts(id digest.Digest) []string {
	var out []string
	for _, im := range d.Mounts() {
		if im.Image == id {
			out = append(out, im.Target)
		}
	}
	return out
}

// newStateDir makes a scratch state dir for a writable host mount.
func (d *Daemon) newStateDir() (string, error) {
	var b [8]byte
	rand.Read(b[:])
	dir := filepath.Join(d.root, MountsDir, hex.EncodeToString(b[:]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("mount state: %w", err)
	}
	return dir, nil
}
