package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/api"
	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/launcher"
	"github.com/fusebox/fusebox/network"
	"github.com/fusebox/fusebox/registry"
)

// PIDName is the file in the daemon's root that holds its process ID
// while it serves (its log is api.LogName).
const PIDName = "daemon.pid"

// ErrRootLocked is returned when another daemon holds the root.
var ErrRootLocked = errors.New("root is in use by another fusebox daemon")

// Config says where a daemon keeps its state and where it listens.
type Config struct {
	// Root is the state directory (store, containers, log).
	Root string
	// Host is the listen address in DOCKER_HOST form: unix:///path.
	Host string
	// Log receives the daemon's log records; nil logs to <root>/daemon.log.
	Log *slog.Logger
	// Exe is the binary the daemon runs as each container's shim (`Exe
	// shim DIR`); empty means launcher.DefaultExe: fusebox-shim next to the
	// running executable, else the executable itself, which is right for
	// `fusebox daemon` and wrong for a daemon inside a test binary.
	Exe string
	// Registry adds to the registry settings of <root>/daemon.json
	// (mirrors, insecure registries): the daemon's command-line flags.
	Registry registry.Config
}

// Daemon is a running fusebox daemon.
type Daemon struct {
	cfg     Config
	root    string
	sock    string
	log     *slog.Logger
	logFile *os.File
	lock    *os.File
	router  *Router
	started time.Time
	store   *cas.Store
	// containers is every container, with the event bus (containers.go).
	containers *containerSet
	mounts     *mountManager
	// net gives containers their network stacks (networks.go); nil when
	// networking is unavailable, for the reason in netErr.
	net    *network.Manager
	netErr error
	// volumes is the volume store, opened on first use (volumes.go).
	volumes volumeState

	// ImageUsers, when set (by the containers' routes), names the
	// containers that use an image, which rmi then refuses to delete
	// unless forced.
	ImageUsers func(ctx context.Context, id digest.Digest) []string

	mu       sync.Mutex
	closers  []func() error
	listener net.Listener
	server   *http.Server
}

// RouteAdder adds a resource's routes to the router, with the daemon as the
// handlers' receiver of state.
type RouteAdder func(d *Daemon, r *Router)

var routeAdders []RouteAdder

// AddRoutes registers a resource's routes; call it from an init function in
// the file that holds the resource's handlers.
func AddRoutes(add RouteAdder) { routeAdders = append(routeAdders, add) }

// New prepares a daemon on cfg.Root: it creates the root, takes its lock and
// opens its log. It does not listen yet; call Serve.
func New(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Root == "" {
		cfg.Root = api.DefaultRoot
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("root %q: %w", cfg.Root, err)
	}
	sock, err := api.SocketPath(cfg.Host)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("create root: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(root, "daemon.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", root, ErrRootLocked)
		}
		return nil, fmt.Errorf("lock root: %w", err)
	}
	d := &Daemon{cfg: cfg, root: root, sock: sock, lock: lock, started: time.Now()}
	d.log = cfg.Log
	if d.log == nil {
		f, err := os.OpenFile(filepath.Join(root, api.LogName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("open log: %w", err)
		}
		d.logFile = f
		var w io.Writer = f
		if !sameFile(os.Stderr, f) {
			w = io.MultiWriter(f, os.Stderr)
		}
		// FUSEBOX_DEBUG=1 adds the debug records: timing spans of a
		// container's start, exit and removal.
		var opts *slog.HandlerOptions
		if os.Getenv("FUSEBOX_DEBUG") != "" {
			opts = &slog.HandlerOptions{Level: slog.LevelDebug}
		}
		d.log = slog.New(slog.NewTextHandler(w, opts))
	}
	if !launcher.SeccompSupported() {
		d.log.Warn("seccomp: fusebox was " + launcher.NoSeccompSupport + "; containers run without a seccomp profile")
	}
	if err := d.openState(ctx); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.initNetwork(ctx); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.initContainers(ctx); err != nil {
		d.Close()
		return nil, err
	}
	d.router = NewRouter(d.log)
	for _, add := range routeAdders {
		add(d, d.router)
	}
	return d, nil
}

// OnClose adds a function run when the daemon shuts down, last added first.
func (d *Daemon) OnClose(f func() error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closers = append(d.closers, f)
}

func sameFile(a, b *os.File) bool {
	ai, err1 := a.Stat()
	bi, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

// Root is the daemon's absolute state directory.
func (d *Daemon) Root() string { return d.root }

// Log is the daemon's logger.
func (d *Daemon) Log() *slog.Logger { return d.log }

// Handler is the API handler, for tests that serve it on a listener of
// their own.
func (d *Daemon) Handler() http.Handler { return d.router }

// Serve listens on the configured socket and serves the API until ctx is
// done, then shuts down gracefully and removes the socket. A stale socket
// left by a daemon that died is replaced; the root lock proves nobody else
// serves this root, but a live socket owned by another root is refused.
func (d *Daemon) Serve(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(d.sock), 0o755); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", d.sock, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("socket %s is in use by another daemon", d.sock)
	}
	_ = os.Remove(d.sock)
	l, err := net.Listen("unix", d.sock)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(d.sock, 0o660); err != nil {
		l.Close()
		return fmt.Errorf("chmod socket: %w", err)
	}
	srv := &http.Server{Handler: d.router, ReadHeaderTimeout: 30 * time.Second}
	d.mu.Lock()
	d.listener, d.server = l, srv
	d.mu.Unlock()
	pidFile := filepath.Join(d.root, PIDName)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		l.Close()
		return fmt.Errorf("write pid file: %w", err)
	}
	defer os.Remove(pidFile)
	d.log.Info("daemon listening", "socket", d.sock, "root", d.root, "pid", os.Getpid(), "version", api.Version)

	// The first container start would otherwise compile the seccomp
	// profile itself.
	go launcher.PrepareSeccomp(ctx, d.cfg.Exe)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		os.Remove(d.sock)
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	d.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	os.Remove(d.sock)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Close releases what New took: state, log and the root lock.
func (d *Daemon) Close() error {
	d.mu.Lock()
	closers := d.closers
	d.closers = nil
	d.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
		d.lock = nil
	}
	if d.logFile != nil {
		errs = append(errs, d.logFile.Close())
		d.logFile = nil
	}
	return errors.Join(errs...)
}

// kernelVersion reads the running kernel's release string.
func kernelVersion() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "unknown"
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}
