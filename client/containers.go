package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// ContainerCreateOptions is the body and name of POST /containers/create.
type ContainerCreateOptions struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
	Name             string
}

// ContainerCreateResult is the created container's ID and the daemon's
// warnings.
type ContainerCreateResult struct {
	ID       string
	Warnings []string
}

// ContainerCreate creates a container (POST /containers/create).
func (c *Client) ContainerCreate(ctx context.Context, opts ContainerCreateOptions) (ContainerCreateResult, error) {
	q := url.Values{}
	if opts.Name != "" {
		q.Set("name", opts.Name)
	}
	hc := opts.HostConfig
	if hc != nil {
		n := *hc
		n.CapAdd, n.CapDrop = normalizeCaps(hc.CapAdd), normalizeCaps(hc.CapDrop)
		hc = &n
	}
	body := container.CreateRequest{Config: opts.Config, HostConfig: hc, NetworkingConfig: opts.NetworkingConfig}
	var out container.CreateResponse
	err := c.call(ctx, request{method: http.MethodPost, path: "/containers/create", query: q, json: body}, &out)
	return ContainerCreateResult{ID: out.ID, Warnings: out.Warnings}, err
}

// normalizeCaps spells capabilities as the docker CLI sends them:
// upper case with the CAP_ prefix (but ALL), sorted, without repeats.
func normalizeCaps(caps []string) []string {
	if caps == nil {
		return nil
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(caps))
	for _, cp := range caps {
		cp = strings.ToUpper(cp)
		if cp != "ALL" && !strings.HasPrefix(cp, "CAP_") {
			cp = "CAP_" + cp
		}
		if !seen[cp] {
			seen[cp] = true
			out = append(out, cp)
		}
	}
	slices.Sort(out)
	return out
}

// ContainerInspectOptions asks for the container's sizes too.
type ContainerInspectOptions struct {
	Size bool
}

// ContainerInspectResult is the container's record, decoded and as sent.
type ContainerInspectResult struct {
	Container container.InspectResponse
	Raw       json.RawMessage
}

// ContainerInspect returns a container's record (GET /containers/{id}/json).
func (c *Client) ContainerInspect(ctx context.Context, id string, opts ContainerInspectOptions) (ContainerInspectResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return ContainerInspectResult{}, err
	}
	q := url.Values{}
	setBool(q, "size", opts.Size)
	var raw json.RawMessage
	if err := c.call(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/json", query: q}, &raw); err != nil {
		return ContainerInspectResult{}, err
	}
	res := ContainerInspectResult{Raw: raw}
	err = json.Unmarshal(raw, &res.Container)
	return res, err
}

// ContainerListOptions are the parameters of GET /containers/json.
type ContainerListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters Filters
}

// ContainerListResult holds the listed containers.
type ContainerListResult struct {
	Items []container.Summary
}

// ContainerList lists containers (GET /containers/json).
func (c *Client) ContainerList(ctx context.Context, opts ContainerListOptions) (ContainerListResult, error) {
	q := url.Values{}
	setBool(q, "all", opts.All)
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	setBool(q, "size", opts.Size)
	opts.Filters.setQuery(q)
	var res ContainerListResult
	err := c.call(ctx, request{method: http.MethodGet, path: "/containers/json", query: q}, &res.Items)
	return res, err
}

// ContainerStartOptions has nothing the CLI sets; it keeps the calls'
// shape.
type ContainerStartOptions struct{}

// ContainerStartResult is empty.
type ContainerStartResult struct{}

// ContainerStart starts a container (POST /containers/{id}/start).
func (c *Client) ContainerStart(ctx context.Context, id string, _ ContainerStartOptions) (ContainerStartResult, error) {
	return ContainerStartResult{}, c.containerPost(ctx, id, "/start", nil)
}

// containerPost makes a POST /containers/{id}<verb> without body whose
// answer is empty.
func (c *Client) containerPost(ctx context.Context, id, verb string, q url.Values) error {
	id, err := checkID("container", id)
	if err != nil {
		return err
	}
	return c.call(ctx, request{method: http.MethodPost, path: "/containers/" + id + verb, query: q}, nil)
}

// ContainerStopOptions are the signal and the seconds to wait before
// SIGKILL (nil: the container's own).
type ContainerStopOptions struct {
	Signal  string
	Timeout *int
}

// ContainerStopResult is empty.
type ContainerStopResult struct{}

// ContainerStop stops a container (POST /containers/{id}/stop).
func (c *Client) ContainerStop(ctx context.Context, id string, opts ContainerStopOptions) (ContainerStopResult, error) {
	return ContainerStopResult{}, c.containerPost(ctx, id, "/stop", stopQuery(opts.Signal, opts.Timeout))
}

// ContainerRestartOptions are those of ContainerStop.
type ContainerRestartOptions ContainerStopOptions

// ContainerRestartResult is empty.
type ContainerRestartResult struct{}

// ContainerRestart restarts a container (POST /containers/{id}/restart).
func (c *Client) ContainerRestart(ctx context.Context, id string, opts ContainerRestartOptions) (ContainerRestartResult, error) {
	return ContainerRestartResult{}, c.containerPost(ctx, id, "/restart", stopQuery(opts.Signal, opts.Timeout))
}

func stopQuery(signal string, timeout *int) url.Values {
	q := url.Values{}
	if signal != "" {
		q.Set("signal", signal)
	}
	if timeout != nil {
		q.Set("t", strconv.Itoa(*timeout))
	}
	return q
}

// ContainerKillOptions is the signal to send; empty is the daemon's
// default, SIGKILL.
type ContainerKillOptions struct {
	Signal string
}

// ContainerKillResult is empty.
type ContainerKillResult struct{}

// ContainerKill signals a container (POST /containers/{id}/kill).
func (c *Client) ContainerKill(ctx context.Context, id string, opts ContainerKillOptions) (ContainerKillResult, error) {
	q := url.Values{}
	if opts.Signal != "" {
		q.Set("signal", opts.Signal)
	}
	return ContainerKillResult{}, c.containerPost(ctx, id, "/kill", q)
}

// ContainerPauseOptions is empty.
type ContainerPauseOptions struct{}

// ContainerPauseResult is empty.
type ContainerPauseResult struct{}

// ContainerPause freezes a container (POST /containers/{id}/pause).
func (c *Client) ContainerPause(ctx context.Context, id string, _ ContainerPauseOptions) (ContainerPauseResult, error) {
	return ContainerPauseResult{}, c.containerPost(ctx, id, "/pause", nil)
}

// ContainerUnpauseOptions is empty.
type ContainerUnpauseOptions struct{}

// ContainerUnpauseResult is empty.
type ContainerUnpauseResult struct{}

// ContainerUnpause thaws a container (POST /containers/{id}/unpause).
func (c *Client) ContainerUnpause(ctx context.Context, id string, _ ContainerUnpauseOptions) (ContainerUnpauseResult, error) {
	return ContainerUnpauseResult{}, c.containerPost(ctx, id, "/unpause", nil)
}

// ContainerRenameOptions is the new name.
type ContainerRenameOptions struct {
	NewName string
}

// ContainerRenameResult is empty.
type ContainerRenameResult struct{}

// ContainerRename renames a container (POST /containers/{id}/rename).
func (c *Client) ContainerRename(ctx context.Context, id string, opts ContainerRenameOptions) (ContainerRenameResult, error) {
	return ContainerRenameResult{}, c.containerPost(ctx, id, "/rename", url.Values{"name": {opts.NewName}})
}

// ContainerResizeOptions is the terminal's new size.
type ContainerResizeOptions struct {
	Height, Width uint
}

// ContainerResizeResult is empty.
type ContainerResizeResult struct{}

// ContainerResize resizes a container's tty (POST /containers/{id}/resize).
func (c *Client) ContainerResize(ctx context.Context, id string, opts ContainerResizeOptions) (ContainerResizeResult, error) {
	return ContainerResizeResult{}, c.containerPost(ctx, id, "/resize", sizeQuery(opts.Height, opts.Width))
}

func sizeQuery(h, w uint) url.Values {
	return url.Values{"h": {strconv.FormatUint(uint64(h), 10)}, "w": {strconv.FormatUint(uint64(w), 10)}}
}

// ContainerRemoveOptions are the parameters of DELETE /containers/{id}.
type ContainerRemoveOptions struct {
	Force         bool
	RemoveVolumes bool
}

// ContainerRemoveResult is empty.
type ContainerRemoveResult struct{}

// ContainerRemove removes a container (DELETE /containers/{id}).
func (c *Client) ContainerRemove(ctx context.Context, id string, opts ContainerRemoveOptions) (ContainerRemoveResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return ContainerRemoveResult{}, err
	}
	q := url.Values{}
	setBool(q, "v", opts.RemoveVolumes)
	setBool(q, "force", opts.Force)
	return ContainerRemoveResult{}, c.call(ctx, request{method: http.MethodDelete, path: "/containers/" + id, query: q}, nil)
}

// ContainerWaitOptions is the condition to wait for.
type ContainerWaitOptions struct {
	Condition container.WaitCondition
}

// ContainerWaitResult delivers the container's exit, or an error, once.
type ContainerWaitResult struct {
	Result <-chan container.WaitResponse
	Error  <-chan error
}

// ContainerWait waits for a container (POST /containers/{id}/wait). The
// request is sent before it returns, so that a wait for the next exit is
// registered before the caller starts the container; the answer comes on
// the channels.
func (c *Client) ContainerWait(ctx context.Context, id string, opts ContainerWaitOptions) ContainerWaitResult {
	resC := make(chan container.WaitResponse, 1)
	errC := make(chan error, 1)
	res := ContainerWaitResult{Result: resC, Error: errC}
	id, err := checkID("container", id)
	if err != nil {
		errC <- err
		return res
	}
	q := url.Values{}
	if opts.Condition != "" {
		q.Set("condition", string(opts.Condition))
	}
	resp, err := c.send(ctx, request{method: http.MethodPost, path: "/containers/" + id + "/wait", query: q})
	if err != nil {
		errC <- err
		return res
	}
	go func() {
		defer closeBody(resp)
		var buf bytes.Buffer
		var w container.WaitResponse
		if err := json.NewDecoder(io.TeeReader(resp.Body, &buf)).Decode(&w); err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				// Not JSON: the daemon's text is the error.
				_, _ = io.Copy(&buf, io.LimitReader(resp.Body, maxErrorBody))
				errC <- errors.New(buf.String())
				return
			}
			errC <- err
			return
		}
		resC <- w
	}()
	return res
}

// ContainerAttachOptions are the parameters of POST /containers/{id}/attach.
type ContainerAttachOptions struct {
	Stream, Stdin, Stdout, Stderr bool
	DetachKeys                    string
}

// ContainerAttachResult is the attached connection.
type ContainerAttachResult struct {
	HijackedResponse
}

// ContainerAttach attaches to a container's streams
// (POST /containers/{id}/attach, upgraded to a raw connection).
func (c *Client) ContainerAttach(ctx context.Context, id string, opts ContainerAttachOptions) (ContainerAttachResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return ContainerAttachResult{}, err
	}
	q := url.Values{}
	setBool(q, "stream", opts.Stream)
	setBool(q, "stdin", opts.Stdin)
	setBool(q, "stdout", opts.Stdout)
	setBool(q, "stderr", opts.Stderr)
	if opts.DetachKeys != "" {
		q.Set("detachKeys", opts.DetachKeys)
	}
	h, err := c.hijack(ctx, request{method: http.MethodPost, path: "/containers/" + id + "/attach", query: q})
	return ContainerAttachResult{HijackedResponse: h}, err
}

// ContainerLogsOptions are the parameters of GET /containers/{id}/logs.
// Since and Until take what docker logs takes: a duration back from now,
// an RFC 3339 date or time, or Unix seconds.
type ContainerLogsOptions struct {
	ShowStdout, ShowStderr bool
	Since, Until           string
	Timestamps             bool
	Follow                 bool
	Tail                   string
	Details                bool
}

// ContainerLogs streams a container's logs (GET /containers/{id}/logs):
// Docker's multiplexed stream, or raw bytes for a tty container.
func (c *Client) ContainerLogs(ctx context.Context, id string, opts ContainerLogsOptions) (io.ReadCloser, error) {
	id, err := checkID("container", id)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	setBool(q, "stdout", opts.ShowStdout)
	setBool(q, "stderr", opts.ShowStderr)
	now := time.Now()
	if opts.Since != "" {
		ts, err := apiTimestamp(opts.Since, now)
		if err != nil {
			return nil, errors.New(`invalid value for "since": ` + err.Error())
		}
		q.Set("since", ts)
	}
	if opts.Until != "" {
		ts, err := apiTimestamp(opts.Until, now)
		if err != nil {
			return nil, errors.New(`invalid value for "until": ` + err.Error())
		}
		q.Set("until", ts)
	}
	setBool(q, "timestamps", opts.Timestamps)
	setBool(q, "details", opts.Details)
	setBool(q, "follow", opts.Follow)
	if opts.Tail != "" && opts.Tail != "all" {
		q.Set("tail", opts.Tail)
	}
	return c.stream(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/logs", query: q})
}

// stream sends r and returns the answer's body for the caller to read and
// close; net/http ends a read blocked on a follow stream when ctx ends.
func (c *Client) stream(ctx context.Context, r request) (io.ReadCloser, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainerStatsOptions say whether to stream and, for one sample,
// whether to wait for a second one to compute CPU use from.
type ContainerStatsOptions struct {
	Stream                bool
	IncludePreviousSample bool
}

// ContainerStatsResult is the JSON stream of samples.
type ContainerStatsResult struct {
	Body io.ReadCloser
}

// ContainerStats reads a container's resource use
// (GET /containers/{id}/stats).
func (c *Client) ContainerStats(ctx context.Context, id string, opts ContainerStatsOptions) (ContainerStatsResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return ContainerStatsResult{}, err
	}
	q := url.Values{"stream": {strconv.FormatBool(opts.Stream)}}
	if !opts.Stream && !opts.IncludePreviousSample {
		q.Set("one-shot", "true")
	}
	body, err := c.stream(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/stats", query: q})
	return ContainerStatsResult{Body: body}, err
}

// ContainerTopOptions are ps's arguments.
type ContainerTopOptions struct {
	Arguments []string
}

// ContainerTopResult is ps's table.
type ContainerTopResult = container.TopResponse

// ContainerTop lists a container's processes (GET /containers/{id}/top).
func (c *Client) ContainerTop(ctx context.Context, id string, opts ContainerTopOptions) (ContainerTopResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return ContainerTopResult{}, err
	}
	q := url.Values{}
	if len(opts.Arguments) > 0 {
		q.Set("ps_args", strings.Join(opts.Arguments, " "))
	}
	var res ContainerTopResult
	err = c.call(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/top", query: q}, &res)
	return res, err
}

// ContainerDiffOptions is empty.
type ContainerDiffOptions struct{}

// ContainerDiffResult is the container's changes.
type ContainerDiffResult struct {
	Changes []container.FilesystemChange
}

// ContainerDiff lists what a container changed (GET /containers/{id}/changes).
func (c *Client) ContainerDiff(ctx context.Context, id string, _ ContainerDiffOptions) (ContainerDiffResult, error) {
	id, err := checkID("container", id)
	if err != nil {
		return ContainerDiffResult{}, err
	}
	var res ContainerDiffResult
	err = c.call(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/changes"}, &res.Changes)
	return res, err
}

// ContainerExportOptions is empty.
type ContainerExportOptions struct{}

// ContainerExport streams a container's filesystem as a tar
// (GET /containers/{id}/export).
func (c *Client) ContainerExport(ctx context.Context, id string, _ ContainerExportOptions) (io.ReadCloser, error) {
	id, err := checkID("container", id)
	if err != nil {
		return nil, err
	}
	return c.stream(ctx, request{method: http.MethodGet, path: "/containers/" + id + "/export"})
}

// ContainerPruneOptions are the prune's filters.
type ContainerPruneOptions struct {
	Filters Filters
}

// ContainerPruneResult is the daemon's report.
type ContainerPruneResult struct {
	Report container.PruneReport
}

// ContainerPrune removes stopped containers (POST /containers/prune).
func (c *Client) ContainerPrune(ctx context.Context, opts ContainerPruneOptions) (ContainerPruneResult, error) {
	q := url.Values{}
	opts.Filters.setQuery(q)
	var res ContainerPruneResult
	err := c.call(ctx, request{method: http.MethodPost, path: "/containers/prune", query: q}, &res.Report)
	return res, err
}

// ContainerCommitOptions are the parameters of POST /commit. Reference
// is checked and split into repo and tag as the docker CLI does.
type ContainerCommitOptions struct {
	Reference string
	Comment   string
	Author    string
	Changes   []string
	NoPause   bool
}

// ContainerCommitResult is the new image's ID.
type ContainerCommitResult struct {
	ID string
}

// ContainerCommit makes an image of a container (POST /commit).
func (c *Client) ContainerCommit(ctx context.Context, id string, opts ContainerCommitOptions) (ContainerCommitResult, error) {
	q, err := commitQuery(id, opts)
	if err != nil {
		return ContainerCommitResult{}, err
	}
	var out container.CommitResponse
	err = c.call(ctx, request{method: http.MethodPost, path: "/commit", query: q}, &out)
	return ContainerCommitResult{ID: out.ID}, err
}
