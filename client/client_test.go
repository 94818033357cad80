package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConnectNoStart(t *testing.T) {
	root := t.TempDir()
	_, err := Connect(context.Background(), Options{Host: "unix://" + filepath.Join(root, "none.sock"), Root: root, NoStart: true})
	if err == nil || !strings.Contains(err.Error(), "is the daemon running?") {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectBadHost(t *testing.T) {
	_, err := Connect(context.Background(), Options{Host: "tcp://127.0.0.1:2375", Root: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "invalid host") {
		t.Fatalf("err = %v", err)
	}
}

// A "daemon" that exits at once must give a one-line error naming the log,
// quickly, not after the whole timeout.
func TestStartDaemonExits(t *testing.T) {
	root := t.TempDir()
	start := time.Now()
	err := Start(context.Background(), Options{Host: "unix://" + filepath.Join(root, "s.sock"), Root: root, Exe: "/bin/false", Timeout: time.Minute})
	if !errors.Is(err, ErrDaemonNotReady) || !strings.Contains(err.Error(), filepath.Join(root, "daemon.log")) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("took %s to notice the daemon exited", time.Since(start))
	}
}

func TestStartTimeout(t *testing.T) {
	root := t.TempDir()
	// A process that stays up without ever listening; it exits by itself
	// shortly after the test.
	err := Start(context.Background(), Options{Host: "unix://" + filepath.Join(root, "s.sock"), Root: root, Exe: writeScript(t, "#!/bin/sh\nsleep 2\n"), Timeout: 500 * time.Millisecond})
	if !errors.Is(err, ErrDaemonNotReady) || !strings.Contains(err.Error(), "no answer on") {
		t.Fatalf("err = %v", err)
	}
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-daemon")
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
