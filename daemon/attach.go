package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/fusebox/fusebox/internal/detachkeys"
	"github.com/fusebox/fusebox/launcher"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodPost, "/containers/{id}/attach", d.containerAttach)
		r.Handle(http.MethodPost, "/containers/{id}/exec", d.execCreate)
		r.Handle(http.MethodPost, "/exec/{id}/start", d.execStart)
		r.Handle(http.MethodPost, "/exec/{id}/resize", d.execResize)
		r.Handle(http.MethodGet, "/exec/{id}/json", d.execInspect)
	})
}

// hijack takes over the connection of an attach or exec start and answers
// as Docker does: 101 UPGRADED when the client asked for an upgrade, else
// 200, with the stream's content type. It returns the connection and a
// reader holding whatever the client already sent (stdin).
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (net.Conn, *bufio.Reader, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack connection: %w", err)
	}
	status := "200 OK"
	upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "tcp")
	if upgrade {
		status = "101 UPGRADED"
	}
	hdr := "HTTP/1.1 " + status + "\r\nContent-Type: " + contentType + "\r\n"
	if upgrade {
		hdr += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	hdr += "\r\n"
	_ = conn.SetDeadline(time.Time{})
	if _, err := conn.Write([]byte(hdr)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw.Reader, nil
}

// muxWriter writes one stream of Docker's multiplexed format to a shared
// connection.
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

func (m muxWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := writeMux(m.w, m.stream, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// parseDetachKeys reads Docker's detach key syntax as a bad-parameter
// error for the client.
func parseDetachKeys(s string) ([]byte, error) {
	keys, err := detachkeys.Parse(s)
	if err != nil {
		return nil, BadParameterf("%v", err)
	}
	return keys, nil
}

// attachDrainTimeout bounds the wait for a removed container's attach to
// relay the rest of its output.
const attachDrainTimeout = 5 * time.Second

// attachment is a client's attach to a container's streams, possibly
// waiting for the container to start.
type attachment struct {
	stdio launcher.Stdio
	ctx   context.Context
	// done receives the attach's end.
	done chan error
	// connected is set once the attach reaches the shim: its end then
	// comes when the command's output has all been relayed.
	connected atomic.Bool
}

// connect attaches a to the running shim and reports the end on a.done.
func (a *attachment) connect(shim *launcher.Shim) error {
	att, err := shim.Attach(a.ctx, a.stdio)
	if err != nil {
		return err
	}
	a.connected.Store(true)
	go func() { a.done <- att.Wait() }()
	return nil
}

func (d *Daemon) containerAttach(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	keys, err := parseDetachKeys(r.URL.Query().Get("detachKeys"))
	if err != nil {
		return err
	}
	rec := c.snapshot()
	conn, br, err := hijack(w, r, streamContentType(r, rec.Config.Tty))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()

	var mu sync.Mutex
	a := &attachment{ctx: ctx, done: make(chan error, 1), stdio: launcher.Stdio{CloseStdin: rec.Config.StdinOnce}}
	if boolParam(r, "stdout") {
		if rec.Config.Tty {
			a.stdio.Stdout = lockedWriter{&mu, conn}
		} else {
			a.stdio.Stdout = muxWriter{&mu, conn, 1}
		}
	}
	if boolParam(r, "stderr") && !rec.Config.Tty {
		a.stdio.Stderr = muxWriter{&mu, conn, 2}
	}
	if boolParam(r, "stdin") && rec.Config.OpenStdin {
		a.stdio.Stdin = detachkeys.NewReader(br, keys, cancel)
	}
	if boolParam(r, "logs") {
		d.replayLogs(ctx, c, a.stdio, rec.Config.Tty)
	}
	if !boolParam(r, "stream") {
		return nil
	}

	c.mu.Lock()
	shim := c.shim
	status := c.rec.State.Status
	removed := c.removed
	if shim == nil || (status != container.StateRunning && status != container.StatePaused) {
		c.attaches = append(c.attaches, a)
		shim = nil
	}
	c.mu.Unlock()
	if shim != nil {
		if err := a.connect(shim); err != nil {
			return nil
		}
	}
	d.emitContainer(c, events.ActionAttach, nil)
	select {
	case <-a.done:
	case <-ctx.Done():
	case <-removed:
		// The removal of an --rm container can be reported while this
		// attach still relays the last of the command's output, which
		// the shim had sent before it answered the exit: finish that.
		if a.connected.Load() {
			select {
			case <-a.done:
			case <-ctx.Done():
			case <-time.After(attachDrainTimeout):
			}
		}
	}
	if ctx.Err() != nil {
		d.emitContainer(c, events.ActionDetach, nil)
	}
	return nil
}

// lockedWriter serialises writes to a connection shared by streams.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// replayLogs writes the container's log to an attach that asked for logs.
func (d *Daemon) replayLogs(ctx context.Context, c *ctr, stdio launcher.Stdio, tty bool) {
	_ = launcher.ReadLogs(ctx, c.dir+"/"+launcher.LogFile, launcher.LogOptions{Tail: -1}, func(e launcher.LogEntry) error {
		w := stdio.Stdout
		if e.Stream == "stderr" && !tty {
			w = stdio.Stderr
		}
		if w != nil {
			_, _ = w.Write([]byte(e.Log))
		}
		return nil
	})
}

// execRecord is an exec created with POST /containers/{id}/exec.
type execRecord struct {
	id          string
	containerID string
	cfg         container.ExecCreateRequest

	mu       sync.Mutex
	running  bool
	started  bool
	exitCode *int
	pid      int
	proc     *launcher.Exec
}

func (d *Daemon) execCreate(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	var req container.ExecCreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return BadParameterf("invalid JSON in exec request: %v", err)
	}
	if len(req.Cmd) == 0 {
		return BadParameterf("No exec command specified")
	}
	if _, err := parseDetachKeys(req.DetachKeys); err != nil {
		return err
	}
	rec := c.snapshot()
	switch rec.State.Status {
	case container.StateRunning:
	case container.StatePaused:
		return Conflictf("Container %s is paused, unpause the container before exec", rec.ID)
	default:
		return Conflictf("container %s is not running", rec.ID)
	}
	e := &execRecord{id: newID(), containerID: rec.ID, cfg: req}
	d.containers.mu.Lock()
	d.containers.execs[e.id] = e
	d.containers.mu.Unlock()
	d.emitContainer(c, events.Action("exec_create: "+strings.Join(req.Cmd, " ")), map[string]string{"execID": e.id})
	return WriteJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: e.id})
}

func (d *Daemon) execByID(id string) (*execRecord, error) {
	d.containers.mu.Lock()
	defer d.containers.mu.Unlock()
	e, ok := d.containers.execs[id]
	if !ok {
		return nil, NotFoundf("No such exec instance: %s", id)
	}
	return e, nil
}

func (d *Daemon) execStart(w http.ResponseWriter, r *http.Request) error {
	e, err := d.execByID(r.PathValue("id"))
	if err != nil {
		return err
	}
	var req container.ExecStartRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			return BadParameterf("invalid JSON in exec start request: %v", err)
		}
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return Conflictf("Exec command %s has already run", e.id)
	}
	e.started = true
	e.mu.Unlock()
	c, err := d.containers.get(e.containerID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	shim := c.shim
	c.mu.Unlock()
	if shim == nil {
		return Conflictf("container %s is not running", e.containerID)
	}
	cfg := launcher.ExecConfig{
		ID: e.id, Args: e.cfg.Cmd, Env: e.cfg.Env, Cwd: e.cfg.WorkingDir, User: e.cfg.User,
		Tty: e.cfg.Tty, Stdin: e.cfg.AttachStdin, Privileged: e.cfg.Privileged,
	}
	if cs := req.ConsoleSize; cs != nil && len(cs) == 2 {
		cfg.ConsoleHeight, cfg.ConsoleWidth = uint16(cs[0]), uint16(cs[1])
	} else if cs := e.cfg.ConsoleSize; cs != nil && len(cs) == 2 {
		cfg.ConsoleHeight, cfg.ConsoleWidth = uint16(cs[0]), uint16(cs[1])
	}
	finish := func(code int) {
		e.mu.Lock()
		e.running = false
		e.exitCode = &code
		e.mu.Unlock()
		d.emitContainer(c, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": strconv.Itoa(code)})
	}
	if req.Detach {
		proc, err := shim.Exec(context.WithoutCancel(r.Context()), cfg, launcher.Stdio{})
		if err != nil {
			finish(launcher.ExitCode(err))
			return err
		}
		e.mu.Lock()
		e.running, e.pid, e.proc = true, proc.Pid(), proc
		e.mu.Unlock()
		go func() {
			st, err := proc.Wait(context.Background())
			if err != nil {
				st.ExitCode = 126
			}
			finish(st.ExitCode)
		}()
		w.WriteHeader(http.StatusOK)
		return nil
	}
	conn, br, err := hijack(w, r, streamContentType(r, cfg.Tty))
	if err != nil {
		return err
	}
	defer conn.Close()
	var mu sync.Mutex
	var stdio launcher.Stdio
	if cfg.Tty {
		stdio.Stdout = lockedWriter{&mu, conn}
	} else {
		if e.cfg.AttachStdout {
			stdio.Stdout = muxWriter{&mu, conn, 1}
		}
		if e.cfg.AttachStderr {
			stdio.Stderr = muxWriter{&mu, conn, 2}
		}
	}
	if e.cfg.AttachStdin {
		keys, _ := parseDetachKeys(e.cfg.DetachKeys)
		stdio.Stdin = detachkeys.NewReader(br, keys, nil)
		stdio.CloseStdin = true
	}
	ctx := context.WithoutCancel(r.Context())
	e.mu.Lock()
	e.running = true
	e.mu.Unlock()
	proc, err := shim.Exec(ctx, cfg, stdio)
	if err != nil {
		msg := "OCI runtime exec failed: exec failed: unable to start container process: " + err.Error() + "\r\n"
		if cfg.Tty {
			_, _ = conn.Write([]byte(msg))
		} else {
			_ = writeMux(conn, 2, []byte(msg))
		}
		finish(launcher.ExitCode(err))
		return nil
	}
	e.mu.Lock()
	e.pid, e.proc = proc.Pid(), proc
	e.mu.Unlock()
	st, werr := proc.Wait(ctx)
	if werr != nil {
		st.ExitCode = 126
	}
	finish(st.ExitCode)
	return nil
}

func (d *Daemon) execResize(w http.ResponseWriter, r *http.Request) error {
	e, err := d.execByID(r.PathValue("id"))
	if err != nil {
		return err
	}
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return BadParameterf("invalid resize: h and w must be numbers")
	}
	e.mu.Lock()
	proc := e.proc
	e.mu.Unlock()
	if proc == nil {
		return Conflictf("Exec %s is not running", e.id)
	}
	if err := proc.Resize(r.Context(), uint16(wd), uint16(h)); err != nil && !errors.Is(err, launcher.ErrNoTTY) {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (d *Daemon) execInspect(w http.ResponseWriter, r *http.Request) error {
	e, err := d.execByID(r.PathValue("id"))
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	priv := e.cfg.Privileged
	resp := container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode, ContainerID: e.containerID, Pid: e.pid,
		OpenStdin: e.cfg.AttachStdin, OpenStdout: e.cfg.AttachStdout, OpenStderr: e.cfg.AttachStderr,
		CanRemove: !e.running && e.started,
		ProcessConfig: &container.ExecProcessConfig{
			Tty: e.cfg.Tty, Entrypoint: e.cfg.Cmd[0], Arguments: append([]string{}, e.cfg.Cmd[1:]...),
			Privileged: &priv, User: e.cfg.User,
		},
	}
	return WriteJSON(w, http.StatusOK, resp)
}
