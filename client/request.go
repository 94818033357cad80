package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/fusebox/fusebox/api"
)

// apiPrefix starts every Docker API path: the version is pinned to the
// daemon's own, so no request waits for a /_ping to negotiate it.
const apiPrefix = "/v" + api.APIVersion

// request is one call to the daemon, before it is sent.
type request struct {
	method string
	path   string     // without the version prefix, e.g. "/containers/json"
	query  url.Values // may be nil
	header http.Header
	// body is sent as is (tar streams, raw JSON); json, when body is nil
	// and json is not, is encoded as the JSON body.
	body io.Reader
	json any
	// unversioned sends path as it is: fusebox's own endpoints.
	unversioned bool
}

// newTransport dials the daemon's unix socket for every connection,
// starting with the one first holds, if any; the host part of request URLs
// is ignored.
func newTransport(sock string, first *firstConn) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return first.dial(ctx, sock)
		},
		// The CLI makes a few calls and exits: one idle connection is
		// enough to reuse between them.
		MaxIdleConns: 1,
	}
}

// firstConn holds the connection Connect made to see whether the daemon
// listens, for the first request to use rather than connect again: a
// round trip less on every command.
type firstConn struct{ held atomic.Pointer[heldConn] }

type heldConn struct {
	conn net.Conn
	at   time.Time
}

// firstConnFresh bounds how long a held connection is used: the daemon
// drops a connection that sent no request for 30 s (ReadHeaderTimeout),
// and a command may wait on its user before its first request (login).
const firstConnFresh = 5 * time.Second

func (f *firstConn) hold(c net.Conn) { f.held.Store(&heldConn{conn: c, at: time.Now()}) }

// dial returns the held connection once, while fresh, then new ones to
// sock.
func (f *firstConn) dial(ctx context.Context, sock string) (net.Conn, error) {
	if h := f.held.Swap(nil); h != nil {
		if time.Since(h.at) < firstConnFresh {
			return h.conn, nil
		}
		_ = h.conn.Close()
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

// close closes the held connection, if it was never used.
func (f *firstConn) close() {
	if h := f.held.Swap(nil); h != nil {
		_ = h.conn.Close()
	}
}

// build turns r into an *http.Request for the daemon.
func (c *Client) build(ctx context.Context, r request) (*http.Request, error) {
	p := r.path
	if !r.unversioned {
		p = apiPrefix + p
	}
	u := "http://docker" + p
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	body := r.body
	if body == nil && r.json != nil {
		b, err := json.Marshal(r.json)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
		if r.header == nil {
			r.header = http.Header{}
		}
		if r.header.Get("Content-Type") == "" {
			r.header.Set("Content-Type", "application/json")
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "fusebox-cli/"+api.Version)
	return req, nil
}

// send makes one call and returns a 2xx or 3xx answer for the caller to
// read and close; any other answer becomes a *ResponseError.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	req, err := c.build(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.unreachable(err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

// unreachable words a failure to reach the daemon, as the docker CLI does.
func (c *Client) unreachable(err error) error {
	return fmt.Errorf("cannot connect to the fusebox daemon at %s: %w", c.Host, err)
}

// call makes one call and decodes its JSON answer into out (when out is
// not nil); the answer's body is always drained and closed.
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// closeBody drains a little of what is left, so that the connection can
// be reused, and closes the body.
func closeBody(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	resp.Body.Close()
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// responseError reads an error answer: Docker's {"message": ...} in JSON,
// else the body as text, else the status.
func responseError(resp *http.Response) error {
	var msg string
	var body []byte
	if resp.Request == nil || resp.Request.Method != http.MethodHead {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	}
	switch {
	case len(body) == 0:
		u := ""
		if resp.Request != nil {
			u = resp.Request.URL.String()
		}
		return &ResponseError{Status: resp.StatusCode, Message: fmt.Sprintf("request returned %s for API route and version %s, check if the server supports the requested API version", resp.Status, u), bare: true}
	case resp.Header.Get("Content-Type") == "application/json":
		var e struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			return &ResponseError{Status: resp.StatusCode, Message: fmt.Sprintf("error reading JSON: %v", err), bare: true}
		}
		msg = strings.TrimSpace(e.Message)
		if msg == "" {
			msg = fmt.Sprintf("API returned a %d (%s) but provided no error-message", resp.StatusCode, http.StatusText(resp.StatusCode))
		}
	default:
		msg = strings.TrimSpace(string(body))
	}
	return &ResponseError{Status: resp.StatusCode, Message: msg}
}

// ResponseError is the daemon's error answer to a call. It prints as the
// docker CLI prints it ("Error response from daemon: <message>"), and
// errors.Is matches it against containerd's errdefs kinds by its HTTP
// status (cerrdefs.IsNotFound for 404, IsConflict for 409, ...), as the
// daemon chose the status from the kind.
type ResponseError struct {
	Status  int    // the HTTP status
	Message string // the daemon's message, as it sent it
	// bare errors carry no message of the daemon's (an empty answer, a
	// name refused before sending), and print without the prefix.
	bare bool
}

func (e *ResponseError) Error() string {
	if e.bare {
		return e.Message
	}
	return "Error response from daemon: " + e.Message
}

// Is reports whether target is the errdefs kind of e's status.
func (e *ResponseError) Is(target error) bool {
	k := statusKind(e.Status)
	return k != nil && errors.Is(k, target)
}

// statusKind is the errdefs kind the daemon answers with status for.
func statusKind(status int) error {
	switch status {
	case http.StatusBadRequest:
		return cerrdefs.ErrInvalidArgument
	case http.StatusUnauthorized:
		return cerrdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return cerrdefs.ErrPermissionDenied
	case http.StatusNotFound:
		return cerrdefs.ErrNotFound
	case http.StatusConflict:
		return cerrdefs.ErrConflict
	case http.StatusPreconditionFailed:
		return cerrdefs.ErrFailedPrecondition
	case http.StatusNotImplemented:
		return cerrdefs.ErrNotImplemented
	case http.StatusServiceUnavailable:
		return cerrdefs.ErrUnavailable
	case http.StatusInternalServerError:
		return cerrdefs.ErrInternal
	}
	switch {
	case status >= 400 && status < 500:
		return cerrdefs.ErrInvalidArgument
	case status >= 500:
		return cerrdefs.ErrInternal
	}
	return nil
}

// Filters are the filters of a list or prune call, KEY → set of values,
// sent as the JSON of the "filters" query parameter.
type Filters map[string]map[string]bool

// Add adds values under key and returns f.
func (f Filters) Add(key string, values ...string) Filters {
	if f[key] == nil {
		f[key] = map[string]bool{}
	}
	for _, v := range values {
		f[key][v] = true
	}
	return f
}

// setQuery sets the "filters" parameter of q when f has any.
func (f Filters) setQuery(q url.Values) {
	if len(f) == 0 {
		return
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err) // maps of strings always encode
	}
	q.Set("filters", string(b))
}

// checkID refuses an empty name or ID before it makes a path like
// /containers//json.
func checkID(kind, id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return "", &ResponseError{Status: http.StatusBadRequest, Message: "invalid " + kind + " name or ID: value is empty", bare: true}
	}
	return id, nil
}

// setBool sets key=1 in q when b.
func setBool(q url.Values, key string, b bool) {
	if b {
		q.Set(key, "1")
	}
}
