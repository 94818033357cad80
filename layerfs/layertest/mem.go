package layertest

import (
	"context"
	"fmt"
	"path"
	"sync/atomic"
	"time"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs"
)

// MemSource is a layer held in memory: its entries are given, not walked,
// and every file's content is inline bytes. It is the shape of a CAS-backed
// source (entries from the file index, content by entry), without a store.
type MemSource struct {
	id      string
	entries []cas.Entry
	data    map[string][]byte
}

var _ layerfs.Source = (*MemSource)(nil)

var memSeq atomic.Uint64

// NewMemSource returns a source for l.
func NewMemSource(l Layer) *MemSource {
	m := &MemSource{id: fmt.Sprintf("mem:%d", memSeq.Add(1)), data: map[string][]byte{}}
	mtime := time.Unix(1700000000, 0)
	m.entries = append(m.entries, cas.Entry{Path: ".", Type: cas.TypeDir, Mode: 0755, ModTime: mtime})
	for _, f := range l {
		e := cas.Entry{
			Path: path.Clean(f.Path), Type: f.Type, Mode: f.Mode, UID: f.UID, GID: f.GID,
			ModTime: mtime, Xattrs: f.Xattrs, Linkname: f.Linkname,
			Devmajor: f.Dev[0], Devminor: f.Dev[1],
		}
		if f.Type == cas.TypeRegular {
			e.Size = int64(len(f.Data))
			e.Inline = true
			m.data[e.Path] = f.Data
		}
		m.entries = append(m.entries, e)
	}
	return m
}

// ID implements layerfs.Source.
func (m *MemSource) ID() string { return m.id }

// Entries implements layerfs.Source; it returns a copy the caller may keep.
func (m *MemSource) Entries(ctx context.Context) ([]cas.Entry, error) {
	return append([]cas.Entry(nil), m.entries...), nil
}

// Open implements layerfs.Source.
func (m *MemSource) Open(ctx context.Context, e *cas.Entry) (layerfs.Content, error) {
	b, ok := m.data[e.Path]
	if !ok {
		return layerfs.Content{}, fmt.Errorf("open %s: %w", e.Path, layerfs.ErrNotRegular)
	}
	return layerfs.Content{Data: b}, nil
}
