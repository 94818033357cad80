package layerfs

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fusebox/fusebox/cas"
)

// mnode is one path of the merged view of a chain of lower layers. Hard
// links share one mnode. An mnode never changes after its tree is built.
type mnode struct {
	e     *cas.Entry // the entry shown (its Path is the path in its own layer)
	src   int        // index of the source that supplied e, top = 0
	ino   uint64
	nlink uint32
	// path is where the node sits in the merged tree ("." for the root);
	// for a hard link, the first of its paths.
	path string
	// aliases lists every merged path of a hard-linked file (nil otherwise).
	aliases []string

	children map[string]*mnode // directories only
	names    []string          // sorted child names, for readdir
}

func (m *mnode) isDir() bool { return m.e.Type == cas.TypeDir }

// child returns the named child of a directory, or nil.
func (m *mnode) child(name string) *mnode {
	if m == nil || m.children == nil {
		return nil
	}
	return m.children[name]
}

// tree is the merged view of a chain of lower layers, top first.
type tree struct {
	key     string
	sources []Source
	root    *mnode
	count   int // number of distinct mnodes
}

// lookupPath walks a slash-separated path ("/a/b", "a/b", "." or "/").
func (t *tree) lookupPath(p string) *mnode {
	n := t.root
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if c == "" || c == "." {
			continue
		}
		n = n.child(c)
		if n == nil {
			return nil
		}
	}
	return n
}

// chainKey names a chain of sources, top first.
func chainKey(srcs []Source) string {
	ids := make([]string, len(srcs))
	for i, s := range srcs {
		ids[i] = s.ID()
	}
	return strings.Join(ids, "\x00")
}

// treeCache keeps merged views by chain key for the life of the process:
// a chain's view never changes, so it is computed once and shared by every
// mount of the chain.
var treeCache = struct {
	sync.Mutex
	m map[string]*treeCall
}{m: map[string]*treeCall{}}

type treeCall struct {
	done chan struct{}
	t    *tree
	err  error
}

// mergedTree returns the cached merged view of srcs, building it on the
// first call. Concurrent first calls build it once.
func mergedTree(ctx context.Context, srcs []Source) (*tree, error) {
	key := chainKey(srcs)
	treeCache.Lock()
	c, ok := treeCache.m[key]
	if !ok {
		c = &treeCall{done: make(chan struct{})}
		treeCache.m[key] = c
		treeCache.Unlock()
		c.t, c.err = buildTree(ctx, srcs)
		c.t.key = key
		if c.err != nil {
			treeCache.Lock()
			delete(treeCache.m, key)
			treeCache.Unlock()
		}
		close(c.done)
	} else {
		treeCache.Unlock()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.t, c.err
}

// ForgetChain drops the cached merged view of a chain of sources (top
// first), for a caller that deletes a layer. Mounts that use it keep it.
func ForgetChain(srcs []Source) {
	treeCache.Lock()
	delete(treeCache.m, chainKey(srcs))
	treeCache.Unlock()
}

// cleanEntryPath is the form of an entry path the merged view uses.
func cleanEntryPath(p string) string { return path.Clean(strings.TrimPrefix(p, "/")) }

func depth(p string) int {
	if p == "." {
		return 0
	}
	return strings.Count(p, "/") + 1
}

// buildTree applies the layers bottom to top: in each layer, opaque markers
// and whiteouts first (they hide what is below), then the entries by
// depth, then hard links.
func buildTree(ctx context.Context, srcs []Source) (*tree, error) {
	rootEntry := &cas.Entry{Path: ".", Type: cas.TypeDir, Mode: 0755, ModTime: time.Unix(0, 0)}
	t := &tree{sources: srcs, root: &mnode{e: rootEntry, src: -1, path: ".", children: map[string]*mnode{}}}
	// The layers are listed at once (a directory layer's listing is
	// disk- and syscall-bound) and applied in order.
	lists := make([][]cas.Entry, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lists[i], errs[i] = src.Entries(ctx)
		}()
	}
	wg.Wait()
	for i := len(srcs) - 1; i >= 0; i-- {
		entries, err := lists[i], errs[i]
		if err != nil {
			return &tree{}, fmt.Errorf("layer %s: %w", srcs[i].ID(), err)
		}
		lists[i] = nil
		if err := t.apply(i, entries); err != nil {
			return &tree{}, fmt.Errorf("layer %s: %w", srcs[i].ID(), err)
		}
	}
	t.finish()
	return t, nil
}

func (t *tree) parentOf(p string) (*mnode, string, error) {
	dir, base := path.Split(p)
	parent := t.lookupPath(dir)
	if parent == nil || !parent.isDir() {
		return nil, "", fmt.Errorf("%s: %w: parent is missing or not a directory", p, ErrBadLayer)
	}
	return parent, base, nil
}

func (t *tree) apply(src int, entries []cas.Entry) error {
	idx := make([]int, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		if c := cleanEntryPath(e.Path); c != e.Path {
			// Written only when it changes: a source may hand the
			// same slice to several trees (CASSource does).
			e.Path = c
		}
		switch e.Type {
		case cas.TypeOpaque:
			if n := t.lookupPath(e.Path); n != nil && n.isDir() {
				n.children = map[string]*mnode{}
			}
		case cas.TypeWhiteout:
			if parent, base, err := t.parentOf(e.Path); err == nil {
				delete(parent.children, base)
			}
		default:
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool {
		return depth(entries[idx[a]].Path) < depth(entries[idx[b]].Path)
	})
	var links []int
	for _, i := range idx {
		e := &entries[i]
		if e.Type == cas.TypeHardlink {
			links = append(links, i)
			continue
		}
		if e.Path == "." {
			if e.Type != cas.TypeDir {
				return fmt.Errorf("root: %w: not a directory", ErrBadLayer)
			}
			t.root.e, t.root.src = e, src
			continue
		}
		parent, base, err := t.parentOf(e.Path)
		if err != nil {
			return err
		}
		old := parent.children[base]
		if old != nil && old.isDir() && e.Type == cas.TypeDir {
			old.e, old.src = e, src // a directory in two layers merges
			continue
		}
		n := &mnode{e: e, src: src}
		if e.Type == cas.TypeDir {
			n.children = map[string]*mnode{}
		}
		parent.children[base] = n
	}
	for _, i := range links {
		e := &entries[i]
		target := t.lookupPath(path.Clean(strings.TrimPrefix(e.Linkname, "/")))
		if target == nil || target.isDir() {
			return fmt.Errorf("%s: %w: hard link to missing %s", e.Path, ErrBadLayer, e.Linkname)
		}
		parent, base, err := t.parentOf(e.Path)
		if err != nil {
			return err
		}
		parent.children[base] = target
	}
	return nil
}

// finish numbers the nodes (root 1, then depth-first in name order),
// counts links and sorts the directory listings.
func (t *tree) finish() {
	var next uint64 = 1
	var walk func(n *mnode, p string)
	walk = func(n *mnode, p string) {
		n.nlink++
		if n.ino != 0 { // a second path to a hard-linked file
			n.aliases = append(n.aliases, p)
			return
		}
		n.ino, n.path = next, p
		next++
		t.count++
		if !n.isDir() {
			return
		}
		n.names = make([]string, 0, len(n.children))
		for name := range n.children {
			n.names = append(n.names, name)
		}
		sort.Strings(n.names)
		n.nlink = 2
		for _, name := range n.names {
			c := n.children[name]
			if c.isDir() {
				n.nlink++
			}
			walk(c, path.Join(p, name))
		}
	}
	walk(t.root, ".")
	var fix func(n *mnode)
	fix = func(n *mnode) {
		for _, name := range n.names {
			c := n.children[name]
			if c.isDir() {
				fix(c)
			} else if len(c.aliases) > 0 && c.aliases[0] != c.path {
				c.aliases = append([]string{c.path}, c.aliases...)
			}
		}
	}
	fix(t.root)
}
