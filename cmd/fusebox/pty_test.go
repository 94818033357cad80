package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/creack/pty"
)

// ptySession is a command started on a pseudo-terminal of its own, with
// everything it writes there collected for the test to look for.
type ptySession struct {
	*os.File // the terminal's controlling side: write to type, Setsize to resize
	mu       sync.Mutex
	buf      bytes.Buffer
	done     chan struct{}
}

// startPTY starts cmd on a new terminal of the given size (the default
// size when nil); the terminal closes with the test.
func startPTY(t *testing.T, cmd *exec.Cmd, size *pty.Winsize) *ptySession {
	t.Helper()
	var f *os.File
	var err error
	if size != nil {
		f, err = pty.StartWithSize(cmd, size)
	} else {
		f, err = pty.Start(cmd)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &ptySession{File: f, done: make(chan struct{})}
	t.Cleanup(func() { f.Close() })
	go func() {
		defer close(s.done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

// seen reports whether the command has written text to the terminal.
func (s *ptySession) seen(text string) bool {
	return strings.Contains(s.output(), text)
}

// output is all the command has written so far.
func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// drained waits until the terminal has no writer left (the command and
// its children exited) and returns all that was written.
func (s *ptySession) drained() string {
	<-s.done
	return s.output()
}
