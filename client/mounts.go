package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/fusebox/fusebox/api"
)

// request calls one of fusebox's own endpoints with an optional JSON body
// (in) and decodes a JSON answer into out (when out is not nil). An error
// answer becomes Docker's one line, "Error response from daemon: ...".
func (c *Client) request(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// do sends one request to the daemon's socket, with a JSON body when body
// is not nil, and returns a 2xx answer for the caller to read and close;
// any other answer becomes a *ResponseError.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	sock, err := api.SocketPath(c.Host)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	req, err := http.NewRequestWithContext(ctx, method, "http://fusebox"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the fusebox daemon at %s: %w", c.Host, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e struct {
			Message string `json:"message"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Message == "" {
			e.Message = resp.Status
		}
		return nil, &ResponseError{Status: resp.StatusCode, Message: e.Message}
	}
	// One connection per call: it closes with the body.
	resp.Body = closeTransport{resp.Body, tr}
	return resp, nil
}

// closeTransport closes a one-call transport's idle connection with the
// answer's body.
type closeTransport struct {
	io.ReadCloser
	tr *http.Transport
}

func (c closeTransport) Close() error {
	err := c.ReadCloser.Close()
	c.tr.CloseIdleConnections()
	return err
}

// ResponseError is an error answer of one of fusebox's own endpoints.
type ResponseError struct {
	Status  int // the HTTP status: 404 for no such image or mount, 409 busy
	Message string
}

func (e *ResponseError) Error() string { return "Error response from daemon: " + e.Message }

// Mount mounts an image on the daemon's host (POST /fusebox/mounts); the
// daemon serves it until Unmount or until it stops. req.Target must be
// absolute.
func (c *Client) Mount(ctx context.Context, req api.MountRequest) (api.MountInfo, error) {
	var info api.MountInfo
	err := c.request(ctx, http.MethodPost, "/fusebox/mounts", req, &info)
	return info, err
}

// Mounts lists the daemon's mounts (GET /fusebox/mounts).
func (c *Client) Mounts(ctx context.Context) ([]api.MountInfo, error) {
	var out []api.MountInfo
	err := c.request(ctx, http.MethodGet, "/fusebox/mounts", nil, &out)
	return out, err
}

// Unmount unmounts a mount made with Mount (DELETE /fusebox/mounts).
func (c *Client) Unmount(ctx context.Context, target string) error {
	return c.request(ctx, http.MethodDelete, "/fusebox/mounts?target="+url.QueryEscape(target), nil, nil)
}

// MountChanges lists what a writable mount changed, from its journal
// (GET /fusebox/mounts/changes).
func (c *Client) MountChanges(ctx context.Context, target string) ([]api.MountChange, error) {
	var out []api.MountChange
	err := c.request(ctx, http.MethodGet, "/fusebox/mounts/changes?target="+url.QueryEscape(target), nil, &out)
	return out, err
}
