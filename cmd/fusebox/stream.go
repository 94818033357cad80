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
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/detachkeys"
)

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
// it is Docker's multiplexed stream. It returns detachkeys.ErrDetached when the user
// typed the detach keys.
func pump(resp *client.HijackedResponse, tty bool, stdin io.Reader, stdout, stderr io.Writer, detachKeys string) error {
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
		keys, err := detachkeys.Parse(detachKeys)
		if err != nil {
			return err
		}
		go func() {
			_, err := io.Copy(resp.Conn, detachkeys.NewReader(stdin, keys, nil))
			if errors.Is(err, detachkeys.ErrDetached) {
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
		return detachkeys.ErrDetached
	}
}

// proxySignals forwards the signals this process gets to the container
// (--sig-proxy) until ctx ends.
func proxySignals(ctx context.Context, c *client.Client, id string) {
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
				_, _ = c.ContainerKill(context.Background(), id, client.ContainerKillOptions{Signal: signalName(sig)})
			}
		}
	}()
}

func signalName(s syscall.Signal) string {
	return strings.TrimPrefix(unix.SignalName(s), "SIG")
}
