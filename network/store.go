package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Network is the record of one bridge network, the default one included.
// The daemon persists it through a Store; everything CNI needs is derived
// from it, so a record is all that must survive a restart.
type Network struct {
	ID       string            `json:"id"`   // 64 hex digits, like Docker's
	Name     string            `json:"name"` // also the CNI network name
	Driver   string            `json:"driver"`
	Bridge   string            `json:"bridge"` // host bridge interface, e.g. fusebox0, fb-<id[:12]>
	Subnet   netip.Prefix      `json:"subnet"`
	Gateway  netip.Addr        `json:"gateway"`
	Internal bool              `json:"internal,omitempty"` // no NAT to the outside
	Labels   map[string]string `json:"labels,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	Created  time.Time         `json:"created"`
	// UserSubnet is true when the subnet came from the user (--subnet); Docker
	// only allows --ip on such networks and so does fusebox.
	UserSubnet bool `json:"userSubnet,omitempty"`
}

// Predefined reports whether the network is one the user cannot remove.
func (n Network) Predefined() bool { return n.Name == DefaultNetwork }

// Store keeps network records. The daemon implements it over its Badger
// bucket; FileStore is the implementation for tools and tests.
type Store interface {
	// PutNetwork creates or replaces the record with n.ID.
	PutNetwork(ctx context.Context, n Network) error
	// DeleteNetwork removes the record; a missing one is not an error.
	DeleteNetwork(ctx context.Context, id string) error
	// Networks returns every record.
	Networks(ctx context.Context) ([]Network, error)
}

// FileStore is a Store kept as one JSON file per network in a directory,
// each written to a temporary file and renamed into place.
type FileStore struct {
	dir string
	mu  sync.Mutex
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns a FileStore over dir, creating it.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("network store: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

func (s *FileStore) PutNetwork(_ context.Context, n Network) error {
	if n.ID == "" || strings.ContainsAny(n.ID, "/.") {
		return fmt.Errorf("put network %q: bad id", n.ID)
	}
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return fmt.Errorf("put network %s: %w", n.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return writeFileAtomic(filepath.Join(s.dir, n.ID+".json"), b)
}

func (s *FileStore) DeleteNetwork(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(filepath.Join(s.dir, id+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete network %s: %w", id, err)
	}
	return nil
}

func (s *FileStore) Networks(_ context.Context) ([]Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []Network
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("list networks: %w", err)
		}
		var n Network
		if err := json.Unmarshal(b, &n); err != nil {
			return nil, fmt.Errorf("list networks: %s: %w", e.Name(), err)
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// writeFileAtomic writes b to a temporary file beside path, syncs it and
// renames it into place, so a crash leaves the old or the new content.
func writeFileAtomic(path string, b []byte) error { return replaceFile(path, b, true) }

// replaceFile writes b to a temporary file beside path and renames it into
// place, so that a reader never sees part of it. Only with sync does the
// content survive a crash of the machine.
func replaceFile(path string, b []byte, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
