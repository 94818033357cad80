package client

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestFirstConn: the connection Connect made carries the first request
// while fresh; later ones, and the first one once stale, are dialled anew.
func TestFirstConn(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	ctx := context.Background()
	dialOne := func() net.Conn {
		t.Helper()
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		<-accepted
		return c
	}

	var f firstConn
	probe := dialOne()
	f.hold(probe)
	if c, err := f.dial(ctx, sock); err != nil || c != probe {
		t.Fatalf("first dial: %v, %v; want the held connection", c, err)
	}
	c, err := f.dial(ctx, sock)
	if err != nil || c == probe {
		t.Fatalf("second dial: %v, %v; want a new connection", c, err)
	}
	c.Close()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the second dial reached no listener")
	}

	stale := dialOne()
	f.held.Store(&heldConn{conn: stale, at: time.Now().Add(-2 * firstConnFresh)})
	c, err = f.dial(ctx, sock)
	if err != nil || c == stale {
		t.Fatalf("dial with a stale held connection: %v, %v; want a new one", c, err)
	}
	c.Close()
	if _, err := stale.Write([]byte("x")); err == nil {
		t.Error("the stale held connection was not closed")
	}
}
