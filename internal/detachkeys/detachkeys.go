// Package detachkeys owns Docker's detach-key sequence: its syntax
// ("ctrl-p,ctrl-q", single letters, ctrl-@ … ctrl-_) and the reader that
// watches an attached stdin for it. The CLI watches the user's terminal
// and the daemon watches the hijacked connection, and both must agree on
// what a sequence is and what happens to keys that start one but don't
// finish it, so the logic lives here once.
package detachkeys

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Default is Docker's detach sequence.
const Default = "ctrl-p,ctrl-q"

var (
	// ErrDetached is returned by a Reader once the whole sequence arrived.
	ErrDetached = errors.New("detached")
	// ErrInvalid reports a key list that is not in Docker's syntax.
	ErrInvalid = errors.New("invalid escape keys")
)

// Parse turns a key list such as "ctrl-p,ctrl-q" into the bytes a terminal
// sends for it; the empty string means Default.
func Parse(s string) ([]byte, error) {
	if s == "" {
		s = Default
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case len(k) == 6 && strings.EqualFold(k[:5], "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= '@' && c <= '_':
				out = append(out, c-'@')
			default:
				return nil, fmt.Errorf("%w (%s) provided", ErrInvalid, s)
			}
		default:
			return nil, fmt.Errorf("%w (%s) provided", ErrInvalid, s)
		}
	}
	return out, nil
}

// Reader passes its input through until the detach keys arrive in a row,
// then fails with ErrDetached. Keys that start the sequence but don't
// finish it are passed on late, in order; a partial sequence at the end of
// the input is held back.
type Reader struct {
	r        io.Reader
	keys     []byte
	onKeys   func()
	matched  int
	pending  []byte
	detached bool
	err      error
}

// NewReader watches r for keys (from Parse); onKeys, when not nil, is
// called once as soon as the sequence is complete, before Read reports it.
// With no keys everything passes through.
func NewReader(r io.Reader, keys []byte, onKeys func()) *Reader {
	return &Reader{r: r, keys: keys, onKeys: onKeys}
}

func (d *Reader) Read(p []byte) (int, error) {
	for {
		if len(d.pending) > 0 {
			n := copy(p, d.pending)
			d.pending = d.pending[n:]
			return n, nil
		}
		if d.detached {
			return 0, ErrDetached
		}
		if d.err != nil {
			return 0, d.err
		}
		buf := make([]byte, max(len(p), 1))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if d.detached {
				break
			}
			d.feed(b)
		}
		d.err = err
	}
}

func (d *Reader) feed(b byte) {
	if len(d.keys) == 0 {
		d.pending = append(d.pending, b)
		return
	}
	if b != d.keys[d.matched] && d.matched > 0 {
		d.pending = append(d.pending, d.keys[:d.matched]...)
		d.matched = 0
	}
	if b != d.keys[d.matched] {
		d.pending = append(d.pending, b)
		return
	}
	d.matched++
	if d.matched == len(d.keys) {
		d.detached = true
		if d.onKeys != nil {
			d.onKeys()
		}
	}
}
