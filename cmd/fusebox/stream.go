package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/moby/moby/api/pkg/stdcopy"
	moby "github.com/moby/moby/client"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// errDetached reports that the user typed the detach keys.
var errDetached = errors.New("detached")

// defaultDetachKeys is Docker's ctrl-p ctrl-q.
const defaultDetachKeys = "ctrl-p,ctrl-q"

// detachKeyBytes turns "ctrl-p,ctrl-q" into the bytes a terminal sends.
func detachKeyBytes(s string) []byte {
	if s == "" {
		s = defaultDetachKeys
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.ToLower(strings.TrimSpace(k))
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6 && k[5] >= 'a' && k[5] <= 'z':
			out = append(out, k[5]-'a'+1)
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			out = append(out, strings.ToUpper(k)[5]-'@')
		}
	}
	return out
}

// escapeReader passes input through until the detach keys arrive in a
// row; then it fails with errDetached. A partial sequence is held back and
// passed on once it can't complete.
type escapeReader struct {
	r        io.Reader
	keys     []byte
	matched  int
	pending  []byte
	detached bool
	err      error
}

func (e *escapeReader) Read(p []byte) (int, error) {
	for {
		if len(e.pending) > 0 {
			n := copy(p, e.pending)
			e.pending = e.pending[n:]
			return n, nil
		}
		if e.detached {
			return 0, errDetached
		}
		if e.err != nil {
			return 0, e.err
		}
		buf := make([]byte, max(len(p), 1))
		n, err := e.r.Read(buf)
		for _, b := range buf[:n] {
			if e.detached {
				break
			}
			switch {
			case len(e.keys) == 0:
				e.pending = append(e.pending, b)
				continue
			case b != e.keys[e.matched] && e.matched > 0:
				e.pending = append(e.pending, e.keys[:e.matched]...)
				e.matched = 0
			}
			if b != e.keys[e.matched] {
				e.pending = append(e.pending, b)
				continue
			}
			e.matched++
			e.detached = e.matched == len(e.keys)
		}
		e.err = err
	}
}

// terminal is the CLI's own stdin and stdout, and whether they are
// terminals.
type terminal struct {
	in      *os.File
	out     io.Writer
	errOut  io.Writer
	inTerm  bool
	outTerm bool
	outFd   int
}

func newTerminal(out, errOut io.Writer) *terminal {
	t := &terminal{in: os.Stdin, out: out, errOut: errOut}
	t.inTerm = term.IsTerminal(int(os.Stdin.Fd()))
	if f, ok := out.(*os.File); ok {
		t.outFd = int(f.Fd())
		t.outTerm = term.IsTerminal(t.outFd)
	}
	return t
}

// size is the output terminal's [height, width], zero when not a terminal.
func (t *terminal) size() (uint, uint) {
	if !t.outTerm {
		return 0, 0
	}
	w, h, err := term.GetSize(t.outFd)
	if err != nil {
		return 0, 0
	}
	return uint(h), uint(w)
}

// raw puts stdin in raw mode for a tty session and returns the restore.
func (t *terminal) raw() func() {
	if !t.inTerm {
		return func() {}
	}
	st, err := term.MakeRaw(int(t.in.Fd()))
	if err != nil {
		return func() {}
	}
	return func() { _ = term.Restore(int(t.in.Fd()), st) }
}

// watchResize calls resize now and at every SIGWINCH until ctx ends.
func (t *terminal) watchResize(ctx context.Context, resize func(h, w uint)) {
	if !t.outTerm {
		return
	}
	if h, w := t.size(); h > 0 {
		resize(h, w)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				if h, w := t.size(); h > 0 {
					resize(h, w)
				}
			}
		}
	}()
}

// pump copies stdin to a hijacked connection and its output to the
// terminal until the output ends. With a tty the output is raw; otherwise
// it is Docker's multiplexed stream. It returns errDetached when the user
// typed the detach keys.
func pump(resp *moby.HijackedResponse, tty bool, stdin io.Reader, stdout, stderr io.Writer, detachKeys string) error {
	outDone := make(chan error, 1)
	go func() {
		var err error
		if tty {
			_, err = io.Copy(stdout, resp.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, resp.Reader)
		}
		outDone <- err
	}()
	detached := make(chan struct{})
	if stdin != nil {
		go func() {
			_, err := io.Copy(resp.Conn, &escapeReader{r: stdin, keys: detachKeyBytes(detachKeys)})
			if errors.Is(err, errDetached) {
				close(detached)
				return
			}
			_ = resp.CloseWrite()
		}()
	}
	select {
	case err := <-outDone:
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
			return err
		}
		return nil
	case <-detached:
		resp.Close()
		return errDetached
	}
}

// proxySignals forwards the signals this process gets to the container
// (--sig-proxy) until ctx ends.
func proxySignals(ctx context.Context, c *moby.Client, id string) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				sig := s.(syscall.Signal)
				_, _ = c.ContainerKill(context.Background(), id, moby.ContainerKillOptions{Signal: signalName(sig)})
			}
		}
	}()
}

func signalName(s syscall.Signal) string {
	return strings.TrimPrefix(unix.SignalName(s), "SIG")
}
