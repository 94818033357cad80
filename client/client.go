package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fusebox/fusebox/api"
	"github.com/fusebox/fusebox/cas/usage"
)

// ErrDaemonNotReady means the daemon was started but never answered /_ping.
var ErrDaemonNotReady = errors.New("daemon did not become ready")

// Client speaks the Docker Engine API to a fusebox daemon over its unix
// socket. Its methods are named after the docker CLI's client calls
// (ContainerCreate, ImageList, ...) and take their options in structs of
// the same names, holding only what the fusebox CLI uses.
type Client struct {
	// Host is the daemon address in unix:// form.
	Host string
	// Started reports whether Connect had to start the daemon.
	Started bool

	sock  string
	first *firstConn
	tr    *http.Transport
	http  *http.Client
}

// newClient returns a client for the socket sock; it dials nothing yet.
func newClient(host, sock string) *Client {
	first := &firstConn{}
	tr := newTransport(sock, first)
	return &Client{Host: host, sock: sock, first: first, tr: tr, http: &http.Client{Transport: tr}}
}

// Close closes the client's idle connections.
func (c *Client) Close() error {
	c.first.close()
	c.tr.CloseIdleConnections()
	return nil
}

// ClientVersion is the API version the client speaks.
func (c *Client) ClientVersion() string { return api.APIVersion }

// Options says which daemon to reach and how to start it.
type Options struct {
	// Host is the daemon's address (unix:///path); empty means api.DefaultHost.
	Host string
	// Root is the daemon's state directory; empty means api.DefaultRoot.
	Root string
	// Exe is the fusebox binary to start the daemon with; empty means the
	// running executable.
	Exe string
	// NoStart makes Connect fail instead of starting a daemon.
	NoStart bool
	// Timeout bounds the wait for a started daemon; zero means 30s.
	Timeout time.Duration
}

// Connect returns a client for the daemon at opts.Host, starting the daemon
// in the background first when nothing listens there.
func Connect(ctx context.Context, opts Options) (*Client, error) {
	if opts.Host == "" {
		opts.Host = api.DefaultHost
	}
	if opts.Root == "" {
		opts.Root = api.DefaultRoot
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	sock, err := api.SocketPath(opts.Host)
	if err != nil {
		return nil, err
	}
	// The API version is the daemon's own, pinned: the fusebox CLI talks to
	// a fusebox daemon, and negotiating would cost every command a /_ping
	// round trip before its first request.
	cl := newClient(opts.Host, sock)
	if conn, err := net.DialTimeout("unix", sock, 2*time.Second); err == nil {
		// The daemon listens; this connection carries the first request.
		cl.first.hold(conn)
		return cl, nil
	}
	if opts.NoStart {
		return nil, fmt.Errorf("cannot connect to the fusebox daemon at %s: is the daemon running?", opts.Host)
	}
	if err := Start(ctx, opts); err != nil {
		return nil, err
	}
	cl.Started = true
	return cl, nil
}

// Start launches `fusebox --root R -H H daemon` detached from the caller
// (new session, stdin from /dev/null, output appended to <root>/daemon.log)
// and waits until it answers /_ping or exits.
func Start(ctx context.Context, opts Options) error {
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	exe := opts.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("find fusebox binary: %w", err)
		}
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return fmt.Errorf("root %q: %w", opts.Root, err)
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return fmt.Errorf("create root: %w", err)
	}
	logPath := filepath.Join(root, api.LogName)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open daemon log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(exe, "--root", root, "-H", opts.Host, "daemon")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	sock, err := api.SocketPath(opts.Host)
	if err != nil {
		return err
	}
	c := newClient(opts.Host, sock)
	defer c.Close()
	deadline := time.NewTimer(opts.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			// Another CLI may have started a daemon at the same moment;
			// ours then lost the root lock, and theirs answers.
			for range 40 {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := c.Ping(pctx)
				cancel()
				if err == nil {
					return nil
				}
				if !daemonRunning(root) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			return fmt.Errorf("daemon exited during start-up (%v): see %s: %w", werr, logPath, ErrDaemonNotReady)
		case <-deadline.C:
			return fmt.Errorf("no answer on %s after %s: see %s: %w", opts.Host, opts.Timeout, logPath, ErrDaemonNotReady)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Ping asks the daemon whether it is up (GET /_ping).
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, request{method: http.MethodGet, path: "/_ping", unversioned: true}, nil)
}

// StoreUsage is the store's space accounting, dedup savings included
// (GET /fusebox/store/usage).
func (c *Client) StoreUsage(ctx context.Context) (usage.Usage, error) {
	var u usage.Usage
	err := c.call(ctx, request{method: http.MethodGet, path: "/fusebox/store/usage", unversioned: true}, &u)
	return u, err
}

// Fsck re-hashes every stored content and checks every layer index
// (POST /fusebox/store/fsck).
func (c *Client) Fsck(ctx context.Context) (usage.Report, error) {
	var r usage.Report
	err := c.call(ctx, request{method: http.MethodPost, path: "/fusebox/store/fsck", unversioned: true}, &r)
	return r, err
}

// daemonRunning reports whether some process holds the root's lock, that
// is, whether a daemon is running (or starting) on root.
func daemonRunning(root string) bool {
	f, err := os.OpenFile(filepath.Join(root, "daemon.lock"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
