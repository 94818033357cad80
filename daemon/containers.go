package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	apinet "github.com/moby/moby/api/types/network"
	digest "github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/launcher"
)

// ContainersDir holds one state directory per container inside the root:
// <root>/containers/<id>/ with the writable layer (upper, work, journal),
// the mount point (merged), the shim's files and the json-file log.
const ContainersDir = "containers"

// containerBucket is the store bucket of container records, keyed by ID.
const containerBucket = "containers"

// containerRecord is what the daemon keeps of a container across restarts:
// what it was created with and its last known state.
type containerRecord struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"` // without the leading "/"
	Created    time.Time             `json:"created"`
	ImageID    digest.Digest         `json:"imageID"`
	Config     *container.Config     `json:"config"`
	HostConfig *container.HostConfig `json:"hostConfig"`
	// Path and Args are the command after merging the image's Entrypoint
	// and Cmd, as inspect shows them.
	Path string   `json:"path"`
	Args []string `json:"args"`
	// Endpoints are the per-network settings (--ip, --mac-address,
	// aliases) of the create request's NetworkingConfig, and the networks
	// connected later, by network name.
	Endpoints map[string]*apinet.EndpointSettings `json:"endpoints,omitempty"`

	State           stateRecord `json:"state"`
	RestartCount    int         `json:"restartCount"`
	ManuallyStopped bool        `json:"manuallyStopped,omitempty"`
}

// stateRecord is a container's state as inspect's State shows it.
type stateRecord struct {
	Status     container.ContainerState `json:"status"`
	Pid        int                      `json:"pid,omitempty"`
	ExitCode   int                      `json:"exitCode"`
	Error      string                   `json:"error,omitempty"`
	OOMKilled  bool                     `json:"oomKilled,omitempty"`
	StartedAt  time.Time                `json:"startedAt,omitzero"`
	FinishedAt time.Time                `json:"finishedAt,omitzero"`
}

// ctr is a container known to the daemon: its record and, while it runs,
// its shim and rootfs mount.
type ctr struct {
	mu  sync.Mutex
	rec containerRecord
	dir string

	shim  *launcher.Shim
	mount rootfsMount
	// exited is closed at the container's next exit (replaced at each
	// start); removed when its record is gone.
	exited  chan struct{}
	removed chan struct{}
	// attaches wait for the next start, when an attach came first (run).
	attaches []*attachment
	// busy serialises start, stop, restart and remove.
	busy chan struct{}
	// removing is set once a remove has begun.
	removing bool
	// saveMu orders the saves of the record (encode and write as one), so
	// that the last state set is the last one written; gone, under it,
	// drops the saves that come after the record was deleted.
	saveMu sync.Mutex
	gone   bool
}

// lock takes the container's lifecycle lock (start/stop/remove), or fails
// when ctx ends first.
func (c *ctr) lock(ctx context.Context) error {
	select {
	case c.busy <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *ctr) unlock() { <-c.busy }

// snapshot copies the record under the lock.
func (c *ctr) snapshot() containerRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	return r
}

func (c *ctr) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.State.Status == container.StateRunning || c.rec.State.Status == container.StatePaused
}

// rootfsMount is a container's mounted rootfs, as far as the code that
// tears containers down needs it.
type rootfsMount interface{ Unmount() error }

// containerSet is every container of the daemon, indexed by ID and name.
type containerSet struct {
	mu     sync.Mutex
	byID   map[string]*ctr
	names  map[string]string // name → ID
	bucket *cas.Bucket
	execs  map[string]*execRecord
	events *eventBus
	// wg counts supervisors, so that Close waits for them.
	wg sync.WaitGroup
}

func newContainerSet(b *cas.Bucket) *containerSet {
	return &containerSet{
		byID:   map[string]*ctr{},
		names:  map[string]string{},
		bucket: b,
		execs:  map[string]*execRecord{},
		events: newEventBus(),
	}
}

// errNoSuchContainer is Docker's 404 for a container name or ID.
func errNoSuchContainer(name string) error { return NotFoundf("No such container: %s", name) }

// get finds a container by full ID, name (with or without "/") or unique
// ID prefix, as Docker does.
func (s *containerSet) get(name string) (*ctr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.byID[name]; ok {
		return c, nil
	}
	if id, ok := s.names[strings.TrimPrefix(name, "/")]; ok {
		return s.byID[id], nil
	}
	if name == "" {
		return nil, errNoSuchContainer(name)
	}
	var found *ctr
	for id, c := range s.byID {
		if strings.HasPrefix(id, name) {
			if found != nil {
				return nil, BadParameterf("Multiple IDs found with provided prefix: %s", name)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errNoSuchContainer(name)
	}
	return found, nil
}

// all returns the containers, newest first.
func (s *containerSet) all() []*ctr {
	s.mu.Lock()
	out := make([]*ctr, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].snapshot(), out[j].snapshot()
		return a.Created.After(b.Created)
	})
	return out
}

// reserveName claims name for id, or picks a random free name when name is
// empty. It fails with Docker's conflict message when the name is taken.
func (s *containerSet) reserveName(name, id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		for i := 0; ; i++ {
			n := randomName(i / 5)
			if _, taken := s.names[n]; !taken {
				s.names[n] = id
				return n, nil
			}
		}
	}
	if !validName.MatchString(name) {
		return "", BadParameterf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	name = strings.TrimPrefix(name, "/")
	if other, taken := s.names[name]; taken {
		return "", Conflictf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	s.names[name] = id
	return name, nil
}

func (s *containerSet) releaseName(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names[name] == id {
		delete(s.names, name)
	}
}

// save writes the container's record to the store.
func (s *containerSet) save(ctx context.Context, c *ctr) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	if c.gone {
		return nil
	}
	c.mu.Lock()
	b, err := json.Marshal(c.rec)
	id := c.rec.ID
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode container %s: %w", id, err)
	}
	return s.bucket.Put(context.WithoutCancel(ctx), id, b)
}

// delete deletes c's record; saves that come later are dropped.
func (s *containerSet) delete(ctx context.Context, c *ctr) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	if err := s.bucket.Delete(ctx, c.snapshot().ID); err != nil {
		return err
	}
	c.gone = true
	return nil
}

// load reads every container record from the store.
func (s *containerSet) load(ctx context.Context, root string) error {
	kvs, err := s.bucket.List(ctx, "")
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		var rec containerRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return fmt.Errorf("container record %s: %w", kv.Key, err)
		}
		c := &ctr{rec: rec, dir: filepath.Join(root, ContainersDir, rec.ID), exited: make(chan struct{}), removed: make(chan struct{}), busy: make(chan struct{}, 1)}
		close(c.exited)
		s.byID[rec.ID] = c
		// Two records may share a name after a crash: an --rm container's
		// record goes after its name is free again (RemoveContainer).
		// The name is the newer container's; recovery removes the other.
		if other, ok := s.byID[s.names[rec.Name]]; !ok || other.rec.Created.Before(rec.Created) {
			s.names[rec.Name] = rec.ID
		}
	}
	return nil
}

// imageUsers names the containers created from image id.
func (s *containerSet) imageUsers(id digest.Digest) []string {
	var out []string
	for _, c := range s.all() {
		r := c.snapshot()
		if r.ImageID == id {
			out = append(out, r.ID)
		}
	}
	return out
}

// containerDir is a container's state directory.
func (d *Daemon) containerDir(id string) string {
	return filepath.Join(d.root, ContainersDir, id)
}

// initContainers loads the container records, and cleans up after
// containers that were running when the daemon last stopped: they can't
// have survived it, because their rootfs was served by it.
func (d *Daemon) initContainers(ctx context.Context) error {
	s := newContainerSet(d.store.Bucket(containerBucket))
	d.containers = s
	d.ImageUsers = func(_ context.Context, id digest.Digest) []string { return s.imageUsers(id) }
	if err := os.MkdirAll(filepath.Join(d.root, ContainersDir), 0o711); err != nil {
		return fmt.Errorf("create containers dir: %w", err)
	}
	if err := s.load(ctx, d.root); err != nil {
		return err
	}
	for _, c := range s.all() {
		if err := d.recoverContainer(ctx, c); err != nil {
			d.log.Warn("recover container", "id", c.rec.ID, "err", err)
		}
	}
	d.removeOrphanDirs()
	d.OnClose(d.shutdownContainers)
	return nil
}

// removeOrphanDirs removes the state directories no container record owns:
// RemoveContainer deletes the record first and the directory after, so a
// daemon that died in between leaves one.
func (d *Daemon) removeOrphanDirs() {
	ents, err := os.ReadDir(filepath.Join(d.root, ContainersDir))
	if err != nil {
		return
	}
	s := d.containers
	for _, e := range ents {
		s.mu.Lock()
		_, owned := s.byID[e.Name()]
		s.mu.Unlock()
		if owned || !e.IsDir() {
			continue
		}
		d.log.Info("remove leftover container dir", "id", e.Name())
		d.removeContainerDir(e.Name(), d.containerDir(e.Name()))
	}
}

// removeContainerDir removes a removed container's state directory, its
// rootfs mount point unmounted first should a mount be left on it.
func (d *Daemon) removeContainerDir(id, dir string) {
	// The shim answers the exit before it destroys the container; the
	// directory is ours once it is gone.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := launcher.AwaitGone(ctx, d.shimStateDir(id, dir)); err != nil {
		d.log.Warn("remove container dir: the shim is still there", "id", id, "err", err)
	}
	cancel()
	unmountStale(filepath.Join(dir, "merged"))
	if err := os.RemoveAll(dir); err != nil {
		d.log.Warn("remove container dir", "id", id, "err", err)
	}
	_ = os.Remove(d.shimLink(id))
	_ = os.Remove(filepath.Dir(d.shimLink(id))) // only when empty
}

// errNotRunning is Docker's conflict for an operation on a stopped container.
func errNotRunning(id string) error {
	return Conflictf("Container %s is not running", id)
}

// errNotModified answers 304: the container is already in the state asked.
var errNotModified = errors.New("not modified")

func init() {
	RegisterErrorStatus(errNotModified, 304)
	RegisterErrorStatus(launcher.ErrInvalidOptions, 400)
	RegisterErrorStatus(launcher.ErrUnknownUser, 400)
	RegisterErrorStatus(launcher.ErrCommandNotFound, 400)
	RegisterErrorStatus(launcher.ErrCommandNotRunnable, 400)
	RegisterErrorStatus(launcher.ErrPaused, 409)
}
