package commit

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/layerfs"
)

// LowerLister lists what an image's layers show below a directory, without
// mounting them. Diff asks it only for a directory renamed into place from
// the image (an upper dir with a redirect), never for the rest of the
// image.
type LowerLister interface {
	// ListLower returns every path below dir (slash-separated, relative to
	// the layers' root, without a leading slash; dir itself excluded) in
	// the merged view of the layers, each with whether it is a directory.
	// A dir the layers do not show as a directory gives an empty map.
	ListLower(ctx context.Context, dir string) (map[string]bool, error)
}

// IndexLower is a LowerLister that merges the file indexes of a chain of
// stored layers (diffIDs bottom first, as an image lists them): whiteouts
// and opaque directories of a layer hide what the layers below it hold,
// and a non-directory hides everything below its path. It reads each
// layer's index once per call, which costs the size of the image, so Diff
// calls it only for renamed directories.
func IndexLower(store cas.IndexProvider, diffIDs []digest.Digest) LowerLister {
	return indexLower{store: store, diffIDs: diffIDs}
}

type indexLower struct {
	store   cas.IndexProvider
	diffIDs []digest.Digest
}

var _ LowerLister = indexLower{}

func (l indexLower) ListLower(ctx context.Context, dir string) (map[string]bool, error) {
	dir = strings.Trim(path.Clean("/"+dir), "/")
	under := func(p string) bool { return p != "." && (dir == "" || strings.HasPrefix(p, dir+"/")) }
	onPath := func(p string) bool { // p is dir or one of its ancestors
		return p == "." || p == dir || strings.HasPrefix(dir, p+"/")
	}
	// What the layers above the one being read decided: gone hides a
	// path and its subtree (a whiteout), below hides only the subtree (an
	// opaque directory, or a non-directory), shown is a path already
	// taken from a higher layer.
	gone, below, shown := map[string]bool{}, map[string]bool{}, map[string]bool{}
	hidden := func(p string) bool {
		if gone[p] {
			return true
		}
		for d := p; d != "."; {
			d = path.Dir(d)
			if gone[d] || below[d] {
				return true
			}
		}
		return false
	}
	out := map[string]bool{}
	for i := len(l.diffIDs) - 1; i >= 0; i-- {
		es, err := l.store.Entries(ctx, l.diffIDs[i])
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.diffIDs[i], err)
		}
		var newGone, newBelow []string
		for j := range es {
			e := &es[j]
			p := e.Path
			if !under(p) && !onPath(p) {
				continue
			}
			if hidden(p) {
				continue
			}
			switch e.Type {
			case cas.TypeWhiteout:
				newGone = append(newGone, p)
				continue
			case cas.TypeOpaque:
				newBelow = append(newBelow, p)
				continue
			}
			if shown[p] {
				continue
			}
			shown[p] = true
			isDir := e.Type == cas.TypeDir
			if !isDir {
				newBelow = append(newBelow, p)
			}
			if under(p) {
				out[strings.TrimPrefix(p, dir+"/")] = isDir
			}
		}
		for _, p := range newGone {
			gone[p] = true
		}
		for _, p := range newBelow {
			below[p] = true
		}
	}
	return out, nil
}

// upperDiff lists the contents of the added directories of a stopped
// container from its upper dir: what Diff reads from the merged view for a
// running one. An added directory is new (its contents are all in the
// upper dir) unless it was renamed from the image, which overlayfs's format
// records as a redirect xattr: then its lower contents are listed by
// m.Lower, merged with the upper dir's entries and whiteouts.
func upperDiff(ctx context.Context, m Mount, changes []layerfs.Change, kinds map[string]layerfs.ChangeKind) ([]layerfs.Change, error) {
	u := upperWalk{ctx: ctx, m: m, lists: map[string]map[string]map[string]bool{}, seen: map[string]bool{}}
	for _, c := range changes {
		u.seen[c.Path] = true
	}
	for _, c := range changes {
		if c.Kind != layerfs.ChangeAdd || underOf(kinds, c.Path) == layerfs.ChangeAdd {
			continue
		}
		rel := strings.TrimPrefix(c.Path, "/")
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(m.Upper, rel), &st); err != nil {
			return nil, fmt.Errorf("%s: %w: listed as added but not in the upper dir", c.Path, ErrMountChanged)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		// A new directory has no lower part; one renamed into place has
		// a redirect. Kernel overlayfs's relative redirects name a
		// sibling in the parent's lower dir, which for the top of an
		// added subtree is the same path as the parent's.
		if err := u.dir(rel, ""); err != nil {
			return nil, err
		}
	}
	return u.extra, nil
}

type upperWalk struct {
	ctx   context.Context
	m     Mount
	lists map[string]map[string]map[string]bool // ListLower answers, indexed by parent
	seen  map[string]bool
	extra []layerfs.Change
}

func (u *upperWalk) add(rel string) {
	p := "/" + rel
	if !u.seen[p] {
		u.seen[p] = true
		u.extra = append(u.extra, layerfs.Change{Path: p, Kind: layerfs.ChangeAdd})
	}
}

// lowerChildren is what the image holds directly below lower ("" for
// none): names and whether each is a directory. It answers from a listing
// of an enclosing directory when one was made; a listing is indexed by
// directory once, so a renamed tree costs its size, not its size times its
// directories.
func (u *upperWalk) lowerChildren(lower string) (map[string]bool, error) {
	if lower == "" {
		return nil, nil
	}
	for root, idx := range u.lists {
		if root == lower {
			return idx[""], nil
		}
		if strings.HasPrefix(lower, root+"/") {
			return idx[lower[len(root)+1:]], nil
		}
	}
	if u.m.Lower == nil {
		return nil, fmt.Errorf("/%s: a renamed directory needs the image's layers to list", lower)
	}
	l, err := u.m.Lower.ListLower(u.ctx, lower)
	if err != nil {
		return nil, fmt.Errorf("list /%s in the image: %w", lower, err)
	}
	idx := map[string]map[string]bool{} // parent (relative to lower) → name → is a dir
	for p, isDir := range l {
		parent, name := path.Split(p)
		parent = strings.TrimSuffix(parent, "/")
		if idx[parent] == nil {
			idx[parent] = map[string]bool{}
		}
		idx[parent][name] = isDir
	}
	u.lists[lower] = idx
	return idx[""], nil
}

// dir adds everything below the upper directory rel, whose lower part is
// inherited (the parent's lower dir joined with the name, "" for none)
// unless its own xattrs say otherwise.
func (u *upperWalk) dir(rel, inherited string) error {
	if err := u.ctx.Err(); err != nil {
		return err
	}
	full := filepath.Join(u.m.Upper, rel)
	lower := inherited
	buf := make([]byte, 4096)
	if n, err := unix.Lgetxattr(full, xattrOpaque, buf); err == nil && string(buf[:n]) == "y" {
		lower = ""
	} else if n, err := unix.Lgetxattr(full, xattrRedirect, buf); err == nil {
		r := string(buf[:n])
		if strings.HasPrefix(r, "/") {
			lower = strings.Trim(path.Clean(r), "/")
		} else if parent := path.Dir(rel); inherited != "" {
			lower = path.Join(path.Dir(inherited), r)
		} else {
			lower = path.Join(parent, r)
		}
	}
	low, err := u.lowerChildren(lower)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(full)
	if err != nil {
		return fmt.Errorf("read /%s: %w", rel, err)
	}
	upperNames := make(map[string]bool, len(ents))
	var subdirs []string
	for _, de := range ents {
		child := path.Join(rel, de.Name())
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(full, de.Name()), &st); err != nil {
			return fmt.Errorf("stat /%s: %w", child, err)
		}
		upperNames[de.Name()] = true
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			continue // a whiteout: the lower entry is gone
		}
		u.add(child)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			subdirs = append(subdirs, de.Name())
		}
	}
	for _, name := range subdirs {
		childLower := ""
		if isDir, ok := low[name]; ok && isDir {
			childLower = path.Join(lower, name)
		}
		if err := u.dir(path.Join(rel, name), childLower); err != nil {
			return err
		}
	}
	// What only the image holds: listed with its whole subtree.
	names := make([]string, 0, len(low))
	for name := range low {
		if !upperNames[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		child := path.Join(rel, name)
		u.add(child)
		if low[name] {
			if err := u.lowerOnly(child, path.Join(lower, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// lowerOnly adds the image's subtree at lower, shown at rel.
func (u *upperWalk) lowerOnly(rel, lower string) error {
	low, err := u.lowerChildren(lower)
	if err != nil {
		return err
	}
	for name, isDir := range low {
		u.add(path.Join(rel, name))
		if isDir {
			if err := u.lowerOnly(path.Join(rel, name), path.Join(lower, name)); err != nil {
				return err
			}
		}
	}
	return nil
}
