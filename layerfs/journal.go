package layerfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ChangeKind says how a path differs from the lower layers. The values are
// Docker's (ContainerChanges: 0 modified, 1 added, 2 deleted).
type ChangeKind uint8

const (
	ChangeModify ChangeKind = iota // C: the path exists below and was changed
	ChangeAdd                      // A: the path is new
	ChangeDelete                   // D: the path existed below and is gone
)

// String is the letter `docker diff` prints.
func (k ChangeKind) String() string {
	switch k {
	case ChangeModify:
		return "C"
	case ChangeAdd:
		return "A"
	case ChangeDelete:
		return "D"
	}
	return "?"
}

// Change is one path of a Journal. Path is absolute ("/etc/passwd").
type Change struct {
	Path string
	Kind ChangeKind
}

// Journal records which paths of a writable mount changed, so that a diff
// or commit costs O(changes) instead of a walk of the whole tree. It is an
// append-only text file ("A /path", path quoted when needed); opening
// replays it. Parents of added and deleted paths are recorded as modified,
// as `docker diff` shows them. An added directory stands for its whole
// subtree, which a commit takes from the mount.
//
// Durability: each change that alters the recorded state is one write(2)
// of one line, before the request that made it is answered, and is not
// synced. So the journal survives a crash or kill of the serving process
// (the line is in the kernel's page cache), which is what a daemon restart
// needs; a crash of the machine can lose the last changes, as it can lose
// the upper dir's own unsynced data (Docker's overlay2 promises no more).
// Sync and Close (at unmount) make it durable.
type Journal struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	m   map[string]ChangeKind
	err error // the first write error, reported by Sync and Close
}

// ErrBadJournal reports a journal file that cannot be parsed.
var ErrBadJournal = errors.New("bad change journal")

// OpenJournal opens (creating it if needed) the journal at file and
// replays it.
func OpenJournal(file string) (*Journal, error) {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &Journal{f: f, m: map[string]ChangeKind{}}
	line, err := j.replay(f, file)
	if err != nil {
		f.Close()
		return nil, err
	}
	if line > 2*len(j.m)+1024 {
		// Mostly history (files made and removed again): rewrite it
		// as one line per change, atomically.
		if err := j.compact(file); err != nil {
			f.Close()
			return nil, err
		}
	}
	j.w = bufio.NewWriter(j.f)
	return j, nil
}

// compact replaces the journal file with one line per recorded change.
func (j *Journal) compact(file string) error {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0600)
	if err != nil {
		return fmt.Errorf("compact journal: %w", err)
	}
	paths := make([]string, 0, len(j.m))
	for p := range j.m {
		paths = append(paths, p)
	}
	sort.Strings(paths) // parents before children, as they were recorded
	j.w = bufio.NewWriter(f)
	for _, p := range paths {
		j.write(j.m[p].String(), p)
	}
	err = j.err
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact journal: %w", err)
	}
	j.f.Close()
	j.f = f
	return nil
}

// ReadJournal lists the changes of the journal at file without opening
// it for writing: for a reader while a mount may still be appending (it
// never compacts the file).
func ReadJournal(file string) ([]Change, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	j := &Journal{m: map[string]ChangeKind{}}
	if _, err := j.replay(f, file); err != nil {
		return nil, err
	}
	return j.Changes(), nil
}

// replay applies the journal's lines and returns how many there were.
// Each line is written with one write(2), so a crash leaves whole lines.
func (j *Journal) replay(r io.Reader, file string) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		bad := fmt.Errorf("journal %s line %d: %w", file, line, ErrBadJournal)
		if len(text) < 3 || text[1] != ' ' {
			return line, bad
		}
		p := text[2:]
		if strings.HasPrefix(p, `"`) {
			var err error
			if p, err = strconv.Unquote(p); err != nil {
				return line, bad
			}
		}
		if text[0] == 'U' {
			j.dropUnder(p)
			continue
		}
		var k ChangeKind
		switch text[0] {
		case 'A':
			k = ChangeAdd
		case 'C':
			k = ChangeModify
		case 'D':
			k = ChangeDelete
		default:
			return line, bad
		}
		j.apply(p, k)
	}
	if err := sc.Err(); err != nil {
		return line, fmt.Errorf("read journal: %w", err)
	}
	return line, nil
}

// record notes a change of p (absolute, cleaned). A nil journal records
// nothing.
func (j *Journal) record(p string, k ChangeKind) {
	if j == nil {
		return
	}
	p = path.Clean(p)
	if p == "/" {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.apply(p, k) {
		j.write(k.String(), p)
	}
}

func (j *Journal) write(kind, p string) {
	q := p
	if strings.ContainsAny(p, "\n\"\\") || strings.TrimSpace(p) != p {
		q = strconv.Quote(p)
	}
	if _, err := fmt.Fprintf(j.w, "%s %s\n", kind, q); err != nil && j.err == nil {
		j.err = err
	}
	if err := j.w.Flush(); err != nil && j.err == nil {
		j.err = err
	}
}

// movedDir forgets what was recorded under a directory that was renamed
// away ("U /path" in the file): the directory's new path, recorded as
// added, stands for the whole subtree. It costs one pass over the journal,
// and only directory renames pay it.
func (j *Journal) movedDir(p string) {
	if j == nil {
		return
	}
	p = path.Clean(p)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.dropUnder(p)
	j.write("U", p)
}

func (j *Journal) dropUnder(p string) {
	prefix := p + "/"
	for k := range j.m {
		if strings.HasPrefix(k, prefix) {
			delete(j.m, k)
		}
	}
}

// apply changes the recorded state for a change of p and reports whether
// the state changed. A change that leaves it as it was (a file opened for
// writing again, say) need not be written: replaying the file without it
// gives the same state.
func (j *Journal) apply(p string, k ChangeKind) bool {
	prev, had := j.m[p]
	switch k {
	case ChangeAdd:
		if had && prev == ChangeDelete {
			k = ChangeModify // deleted below, then made again
		} else if had && prev == ChangeModify {
			k = ChangeModify
		}
	case ChangeModify:
		if had {
			return false // added stays added, modified stays modified
		}
	case ChangeDelete:
		if had && prev == ChangeAdd {
			delete(j.m, p) // never existed below
			j.markParents(p)
			return true
		}
	}
	j.m[p] = k
	parents := j.markParents(p)
	return !had || prev != k || parents
}

// markParents records the directories above p as modified and reports
// whether any was not recorded yet.
func (j *Journal) markParents(p string) bool {
	added := false
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		if _, ok := j.m[d]; ok {
			return added
		}
		j.m[d] = ChangeModify
		added = true
	}
	return added
}

// Changes lists the changes sorted by path. Paths under a deleted
// directory are left out, as `docker diff` shows only the directory.
func (j *Journal) Changes() []Change {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	out := make([]Change, 0, len(j.m))
	for p, k := range j.m {
		if !j.underDeleted(p) {
			out = append(out, Change{Path: p, Kind: k})
		}
	}
	j.mu.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a].Path < out[b].Path })
	return out
}

func (j *Journal) underDeleted(p string) bool {
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		if k, ok := j.m[d]; ok && k == ChangeDelete {
			return true
		}
	}
	return false
}

// Sync flushes the journal to stable storage.
func (j *Journal) Sync() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return fmt.Errorf("write journal: %w", j.err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	return nil
}

// Close syncs and closes the journal file.
func (j *Journal) Close() error {
	if j == nil {
		return nil
	}
	err := j.Sync()
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close journal: %w", cerr)
	}
	return err
}
