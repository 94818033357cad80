package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fusebox/fusebox/volume/mountspec"
)

// Sentinel errors; the Store's errors wrap them for errors.Is.
var (
	ErrNotFound     = errors.New("no such volume")
	ErrInUse        = errors.New("volume is in use")
	ErrInvalidName  = errors.New("invalid volume name")
	ErrBadDriver    = errors.New("unknown volume driver")
	ErrBadOption    = errors.New("invalid volume option")
	ErrInvalidSpec  = mountspec.ErrInvalidSpec
	ErrTargetEscape = errors.New("mount target escapes the container's rootfs")
)

// Driver is the only volume driver there is: Docker's "local".
const Driver = "local"

// AnonymousLabel marks a volume made for `-v /path` or an image's VOLUME,
// with Docker's label key; `volume prune` without --all removes only these.
const AnonymousLabel = "com.docker.volume.anonymous"

// DataDir is the directory inside a volume's directory that containers see.
const DataDir = "_data"

// metaFile is the volume's record beside its data.
const metaFile = "volume.json"

// Volume is a volume's record.
type Volume struct {
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Labels     map[string]string `json:"labels"`
	Options    map[string]string `json:"options"`
	CreatedAt  time.Time         `json:"createdAt"`
	Mountpoint string            `json:"-"` // <dir>/<name>/_data, filled on read
}

// Anonymous reports whether v was made without a name by a container.
func (v Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// CreateOptions are what `volume create` takes besides the name.
type CreateOptions struct {
	Driver  string
	Labels  map[string]string
	Options map[string]string
}

// Store is the volumes under one directory and the containers using them.
type Store struct {
	dir string

	mu sync.Mutex
	// refs maps a volume name to the IDs of the containers that use it.
	refs map[string]map[string]struct{}
	// mounted maps a volume with driver options to the running
	// containers for which its filesystem is mounted.
	mounted map[string]map[string]struct{}
}

// validName is Docker's rule for local volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidName reports whether name is a valid local volume name.
func ValidName(name string) bool { return validName.MatchString(name) }

// Temporary and doomed directories start with a dot, which no valid volume
// name does, so they never show in a listing.
const (
	tmpPrefix = ".tmp-"
	rmPrefix  = ".rm-"
)

// Open returns the store of the volumes under dir, creating dir and
// removing what an interrupted Create or Remove left.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o701); err != nil {
		return nil, fmt.Errorf("create volumes dir: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read volumes dir: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) || strings.HasPrefix(e.Name(), rmPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("clean volumes dir: %w", err)
			}
		}
	}
	if err := unmountStale(dir); err != nil {
		return nil, err
	}
	return &Store{dir: dir, refs: map[string]map[string]struct{}{}, mounted: map[string]map[string]struct{}{}}, nil
}

// Dir is the directory holding the volumes.
func (s *Store) Dir() string { return s.dir }

// NewAnonymousName returns a fresh 64-hex name, as Docker gives anonymous
// volumes.
func NewAnonymousName() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func nameError(name string) error {
	return errorf(ErrInvalidName, "create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name)
}

// checkCreate validates the options as the local driver does.
func checkCreate(name string, o CreateOptions) error {
	if !ValidName(name) {
		return nameError(name)
	}
	if o.Driver != "" && o.Driver != Driver {
		return errorf(ErrBadDriver, "create %s: error looking up volume plugin %s: plugin %q not found", name, o.Driver, o.Driver)
	}
	_, err := parseDriverOptions(name, o.Options)
	return err
}

// Create makes a volume, or returns the existing one of that name as
// Docker does (created is false then). An empty name makes an anonymous
// volume.
func (s *Store) Create(ctx context.Context, name string, o CreateOptions) (v Volume, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.create(name, o)
}

func (s *Store) create(name string, o CreateOptions) (Volume, bool, error) {
	if name == "" {
		name = NewAnonymousName()
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[AnonymousLabel] = ""
	}
	if err := checkCreate(name, o); err != nil {
		return Volume{}, false, err
	}
	if v, err := s.get(name); err == nil {
		return v, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Volume{}, false, err
	}
	v := Volume{Name: name, Driver: Driver, Labels: o.Labels, Options: o.Options, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o701); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Mkdir(filepath.Join(tmp, DataDir), 0o755); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Volume{}, false, fmt.Errorf("encode volume %s: %w", name, err)
	}
	if err := writeSync(filepath.Join(tmp, metaFile), b); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return Volume{}, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	syncDir(s.dir)
	v.Mountpoint = filepath.Join(s.dir, name, DataDir)
	return v, true, nil
}

func writeSync(path string, b []byte) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// Get returns the volume called name.
func (s *Store) Get(ctx context.Context, name string) (Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.get(name)
}

func (s *Store) get(name string) (Volume, error) {
	if !ValidName(name) {
		return Volume{}, fmt.Errorf("get %s: %w", name, ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, name, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Volume{}, fmt.Errorf("get %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Volume{}, fmt.Errorf("read volume %s: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return Volume{}, fmt.Errorf("volume record %s: %w", name, err)
	}
	v.Name = name
	v.Mountpoint = filepath.Join(s.dir, name, DataDir)
	return v, nil
}

// List returns every volume, sorted by name.
func (s *Store) List(ctx context.Context) ([]Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, e := range ents {
		if !e.IsDir() || !ValidName(e.Name()) {
			continue
		}
		v, err := s.get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Users returns the IDs of the containers using the volume, sorted.
func (s *Store) Users(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users(name)
}

func (s *Store) users(name string) []string {
	var out []string
	for id := range s.refs[name] {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Acquire gets the volume called name for container id, creating it when
// missing (an empty name makes an anonymous one), and counts id as a
// user, all under one lock so that no Remove slips in between.
func (s *Store) Acquire(ctx context.Context, name, id string, o CreateOptions) (v Volume, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, created, err = s.create(name, o)
	if err != nil {
		return Volume{}, false, err
	}
	s.ref(v.Name, id)
	return v, created, nil
}

// Ref counts container id as a user of the volume, whether or not the
// volume exists (the daemon rebuilding its counts at start-up).
func (s *Store) Ref(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ref(name, id)
}

func (s *Store) ref(name, id string) {
	if s.refs[name] == nil {
		s.refs[name] = map[string]struct{}{}
	}
	s.refs[name][id] = struct{}{}
}

// Release forgets container id as a user of every volume.
func (s *Store) Release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, users := range s.refs {
		delete(users, id)
		if len(users) == 0 {
			delete(s.refs, name)
		}
	}
}

// Remove deletes a volume and its data. A volume in use is refused with
// Docker's text; force makes a missing volume no error.
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remove(name, force)
}

func (s *Store) remove(name string, force bool) error {
	if _, err := s.get(name); err != nil {
		if force && errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if users := s.users(name); len(users) > 0 {
		return fmt.Errorf("remove %s: %w - [%s]", name, ErrInUse, strings.Join(users, ", "))
	}
	if len(s.mounted[name]) > 0 {
		return fmt.Errorf("remove %s: %w - mounted", name, ErrInUse)
	}
	doomed := filepath.Join(s.dir, rmPrefix+name)
	if err := os.Rename(filepath.Join(s.dir, name), doomed); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	syncDir(s.dir)
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// RemoveIfUnused deletes the volume when no container uses it any more,
// and reports whether it did; `rm -v` uses it for anonymous volumes that
// another container may still share through --volumes-from.
func (s *Store) RemoveIfUnused(ctx context.Context, name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refs[name]) > 0 {
		return false, nil
	}
	if err := s.remove(name, true); err != nil {
		return false, err
	}
	return true, nil
}

// Size is the apparent size of the volume's files in bytes (what `system
// df -v` shows); -1 when it can't be read.
func Size(v Volume) int64 {
	var n int64
	err := filepath.WalkDir(v.Mountpoint, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return n
}

// kindError has a message of its own (Docker's text, with nothing added)
// and matches a sentinel with errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}
