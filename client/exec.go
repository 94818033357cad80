package client

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/container"
)

// ConsoleSize is a terminal's [height, width].
type ConsoleSize struct {
	Height, Width uint
}

// errConsoleSize refuses a console size for a process without tty.
var errConsoleSize = &ResponseError{Status: http.StatusBadRequest, Message: "console size is only supported when TTY is enabled", bare: true}

// consoleSize is the API's form of s: nil when unset.
func consoleSize(tty bool, s ConsoleSize) (*[2]uint, error) {
	if s.Height == 0 && s.Width == 0 {
		return nil, nil
	}
	if !tty {
		return nil, errConsoleSize
	}
	return &[2]uint{s.Height, s.Width}, nil
}

// ExecCreateOptions is the process to run in a container.
type ExecCreateOptions struct {
	User         string
	Privileged   bool
	TTY          bool
	ConsoleSize  ConsoleSize
	AttachStdin  bool
	AttachStderr bool
	AttachStdout bool
	DetachKeys   string
	Env          []string
	WorkingDir   string
	Cmd          []string
}

// ExecCreateResult is the new exec's ID.
type ExecCreateResult struct {
	ID string
}

// ExecCreate prepares a process in a container (POST /containers/{id}/exec).
func (c *Client) ExecCreate(ctx context.Context, id string, opts ExecCreateOptions) (ExecCreateResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return ExecCreateResult{}, err
	}
	size, err := consoleSize(opts.TTY, opts.ConsoleSize)
	if err != nil {
		return ExecCreateResult{}, err
	}
	body := container.ExecCreateRequest{
		User: opts.User, Privileged: opts.Privileged, Tty: opts.TTY, ConsoleSize: size,
		AttachStdin: opts.AttachStdin, AttachStderr: opts.AttachStderr, AttachStdout: opts.AttachStdout,
		DetachKeys: opts.DetachKeys, Env: opts.Env, WorkingDir: opts.WorkingDir, Cmd: opts.Cmd,
	}
	var out container.ExecCreateResponse
	err = c.call(ctx, request{method: http.MethodPost, path: "/containers/" + id + "/exec", json: body}, &out)
	return ExecCreateResult{ID: out.ID}, err
}

// ExecStartOptions start an exec without attaching to it.
type ExecStartOptions struct {
	Detach      bool
	TTY         bool
	ConsoleSize ConsoleSize
}

// ExecStartResult is empty.
type ExecStartResult struct{}

// ExecStart starts an exec detached (POST /exec/{id}/start).
func (c *Client) ExecStart(ctx context.Context, execID string, opts ExecStartOptions) (ExecStartResult, error) {
	size, err := consoleSize(opts.TTY, opts.ConsoleSize)
	if err != nil {
		return ExecStartResult{}, err
	}
	body := container.ExecStartRequest{Detach: opts.Detach, Tty: opts.TTY, ConsoleSize: size}
	return ExecStartResult{}, c.call(ctx, request{method: http.MethodPost, path: "/exec/" + execID + "/start", json: body}, nil)
}

// ExecAttachOptions start an exec attached to its streams.
type ExecAttachOptions struct {
	TTY         bool
	ConsoleSize ConsoleSize
}

// ExecAttachResult is the attached connection.
type ExecAttachResult struct {
	HijackedResponse
}

// ExecAttach starts an exec and attaches to it (POST /exec/{id}/start,
// upgraded to a raw connection).
func (c *Client) ExecAttach(ctx context.Context, execID string, opts ExecAttachOptions) (ExecAttachResult, error) {
	size, err := consoleSize(opts.TTY, opts.ConsoleSize)
	if err != nil {
		return ExecAttachResult{}, err
	}
	body := container.ExecStartRequest{Tty: opts.TTY, ConsoleSize: size}
	h, err := c.hijack(ctx, request{method: http.MethodPost, path: "/exec/" + execID + "/start", json: body})
	return ExecAttachResult{HijackedResponse: h}, err
}

// ExecResizeOptions is the exec's terminal's new size.
type ExecResizeOptions struct {
	Height, Width uint
}

// ExecResizeResult is empty.
type ExecResizeResult struct{}

// ExecResize resizes an exec's tty (POST /exec/{id}/resize).
func (c *Client) ExecResize(ctx context.Context, execID string, opts ExecResizeOptions) (ExecResizeResult, error) {
	q := sizeQuery(opts.Height, opts.Width)
	return ExecResizeResult{}, c.call(ctx, request{method: http.MethodPost, path: "/exec/" + execID + "/resize", query: q}, nil)
}

// ExecInspectOptions is empty.
type ExecInspectOptions struct{}

// ExecInspectResult is what the CLI reads of an exec.
type ExecInspectResult struct {
	ID          string
	ContainerID string
	Running     bool
	ExitCode    int
	PID         int
}

// ExecInspect reads an exec's state (GET /exec/{id}/json).
func (c *Client) ExecInspect(ctx context.Context, execID string, _ ExecInspectOptions) (ExecInspectResult, error) {
	var out container.ExecInspectResponse
	if err := c.call(ctx, request{method: http.MethodGet, path: "/exec/" + execID + "/json"}, &out); err != nil {
		return ExecInspectResult{}, err
	}
	res := ExecInspectResult{ID: out.ID, ContainerID: out.ContainerID, Running: out.Running, PID: out.Pid}
	if out.ExitCode != nil {
		res.ExitCode = *out.ExitCode
	}
	return res, nil
}
