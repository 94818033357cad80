package commit

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/fusebox/fusebox/layerfs"
)

// ErrBadChangeList reports a change list that cannot be turned into a
// layer: a change of an unknown kind, a relative path, the root itself.
var ErrBadChangeList = errors.New("invalid change list")

// Changes puts a container's recorded changes in the order and with the
// meaning `docker diff` shows: sorted by path (byte order, as Docker sorts),
// each path once, the parents of every changed path listed as changed
// ("C"), and nothing under a deleted directory. It costs O(n log n) in the
// number of changes and never looks at the image.
//
// The journal already keeps these rules; Changes re-establishes them so
// that any list (a journal replayed by another process, a list built by
// hand in a test) gives Docker's output, and it refuses what no journal
// writes.
func Changes(in []layerfs.Change) ([]layerfs.Change, error) {
	m := make(map[string]layerfs.ChangeKind, len(in))
	for _, c := range in {
		if !path.IsAbs(c.Path) {
			return nil, fmt.Errorf("%w: path %q is not absolute", ErrBadChangeList, c.Path)
		}
		p := path.Clean(c.Path)
		if p == "/" {
			return nil, fmt.Errorf("%w: the root cannot change", ErrBadChangeList)
		}
		switch c.Kind {
		case layerfs.ChangeModify, layerfs.ChangeAdd, layerfs.ChangeDelete:
		default:
			return nil, fmt.Errorf("%w: %s: unknown kind %d", ErrBadChangeList, p, c.Kind)
		}
		if prev, ok := m[p]; ok && prev != c.Kind {
			return nil, fmt.Errorf("%w: %s listed as both %s and %s", ErrBadChangeList, p, prev, c.Kind)
		}
		m[p] = c.Kind
	}
	// Parents of a changed path are changed; an added parent stays added.
	for p := range m {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			k, ok := m[d]
			if ok {
				if k == layerfs.ChangeDelete {
					break // p lies under a deleted directory: dropped below
				}
				continue
			}
			m[d] = layerfs.ChangeModify
		}
	}
	out := make([]layerfs.Change, 0, len(m))
	for p, k := range m {
		if underDeleted(m, p) {
			continue
		}
		out = append(out, layerfs.Change{Path: p, Kind: k})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Path < out[b].Path })
	return out, nil
}

func underDeleted(m map[string]layerfs.ChangeKind, p string) bool {
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		if k, ok := m[d]; ok && k == layerfs.ChangeDelete {
			return true
		}
	}
	return false
}

// APIChanges is the list in the Engine API's form, the body of
// GET /containers/{id}/changes (Kind 0 = C, 1 = A, 2 = D). The values of
// layerfs.ChangeKind are Docker's, so the conversion is one to one.
func APIChanges(changes []layerfs.Change) []container.FilesystemChange {
	out := make([]container.FilesystemChange, len(changes))
	for i, c := range changes {
		out[i] = container.FilesystemChange{Path: c.Path, Kind: container.ChangeType(c.Kind)}
	}
	return out
}

// Format writes the list as `docker diff` prints it: one "C /path" line
// per change.
func Format(changes []layerfs.Change) string {
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(c.Kind.String())
		b.WriteByte(' ')
		b.WriteString(c.Path)
		b.WriteByte('\n')
	}
	return b.String()
}
