package commit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
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
		switch underOf(m, p) {
		case layerfs.ChangeDelete:
			continue // docker diff shows the deleted directory only
		case layerfs.ChangeAdd:
			// Nothing below an added directory existed in the image: a
			// path changed there (in a directory renamed into place) is
			// added, and one deleted there never was.
			if k == layerfs.ChangeDelete {
				continue
			}
			k = layerfs.ChangeAdd
		}
		out = append(out, layerfs.Change{Path: p, Kind: k})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Path < out[b].Path })
	return out, nil
}

// underOf is ChangeDelete when p lies under a deleted directory, ChangeAdd
// when under an added one (and not a deleted one), else ChangeModify.
func underOf(m map[string]layerfs.ChangeKind, p string) layerfs.ChangeKind {
	res := layerfs.ChangeModify
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		switch m[d] {
		case layerfs.ChangeDelete:
			return layerfs.ChangeDelete
		case layerfs.ChangeAdd:
			res = layerfs.ChangeAdd
		}
	}
	return res
}

// Diff is what `docker diff` and GET /containers/{id}/changes show: the
// normalised change list (see Changes) with the contents of added
// directories listed as added, as Docker lists them. The journal records
// a directory renamed into place as one added path; its subtree is read
// from the merged view when m.Merged is set (a running container), else
// from the upper dir, with m.Lower listing what a renamed directory brings
// from the image (a stopped container: nothing is mounted). The cost is the
// number of changes plus the size of the added subtrees, never the size of
// the image (a renamed directory's listing reads the image's file indexes,
// but no file system).
func Diff(ctx context.Context, m Mount) ([]layerfs.Change, error) {
	changes, err := Changes(m.Changes)
	if err != nil {
		return nil, err
	}
	kinds := make(map[string]layerfs.ChangeKind, len(changes))
	for _, c := range changes {
		kinds[c.Path] = c.Kind
	}
	var extra []layerfs.Change
	if m.Merged == "" {
		if !slices.ContainsFunc(changes, func(c layerfs.Change) bool { return c.Kind == layerfs.ChangeAdd }) {
			return changes, nil
		}
		if m.Upper == "" {
			return nil, fmt.Errorf("%w: added paths but neither a merged view nor an upper dir to list them from", ErrBadChangeList)
		}
		if extra, err = upperDiff(ctx, m, changes, kinds); err != nil {
			return nil, err
		}
	} else if extra, err = mergedDiff(ctx, m, changes, kinds); err != nil {
		return nil, err
	}
	if len(extra) == 0 {
		return changes, nil
	}
	changes = append(changes, extra...)
	sort.Slice(changes, func(a, b int) bool { return changes[a].Path < changes[b].Path })
	return changes, nil
}

// mergedDiff lists the contents of added directories from the merged view.
func mergedDiff(ctx context.Context, m Mount, changes []layerfs.Change, kinds map[string]layerfs.ChangeKind) ([]layerfs.Change, error) {
	seen := make(map[string]bool, len(changes))
	for _, c := range changes {
		seen[c.Path] = true
	}
	var extra []layerfs.Change
	var walk func(dir string) error
	walk = func(dir string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := os.ReadDir(filepath.Join(m.Merged, dir))
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		for _, de := range ents {
			p := path.Join(dir, de.Name())
			if !seen[p] {
				seen[p] = true
				extra = append(extra, layerfs.Change{Path: p, Kind: layerfs.ChangeAdd})
			}
			if de.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, c := range changes {
		// Only the top of an added subtree is walked.
		if c.Kind != layerfs.ChangeAdd || underOf(kinds, c.Path) == layerfs.ChangeAdd {
			continue
		}
		fi, err := os.Lstat(filepath.Join(m.Merged, c.Path))
		if err != nil {
			return nil, fmt.Errorf("%s: %w: listed as added but not there", c.Path, ErrMountChanged)
		}
		if fi.IsDir() {
			if err := walk(c.Path); err != nil {
				return nil, err
			}
		}
	}
	return extra, nil
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
