package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/fusebox/fusebox/api"
)

// HandlerFunc serves one API route. A handler that has not written anything
// yet returns its error and the router turns it into Docker's JSON error body
// with the status its kind calls for (see [StatusOf]); a handler that has
// started streaming reports errors in the stream itself.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Router dispatches API requests by method and path. Paths may carry a
// version prefix (/v1.44/images/json) or none (/images/json); both reach the
// same handler. Patterns are literal segments and {name} wildcards; a
// wildcard written {name...} matches one or more segments, which image names
// (docker.io/library/busybox) need even in the middle of a path:
//
//	r.Handle("GET", "/images/{name...}/json", d.imageInspect)
//
// Handlers read wildcards with r.PathValue("name").
type Router struct {
	routes []route
	log    *slog.Logger
}

type route struct {
	method   string
	segments []string
	handler  HandlerFunc
}

// NewRouter returns an empty router that logs failures to log.
func NewRouter(log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{log: log}
}

// Handle adds a route. Method is an HTTP method; HEAD is not implied by GET.
func (rt *Router) Handle(method, pattern string, h HandlerFunc) {
	rt.routes = append(rt.routes, route{
		method:   method,
		segments: splitPath(pattern),
		handler:  h,
	})
}

var versionPrefix = regexp.MustCompile(`^/v(\d+\.\d+)(/|$)`)

type apiVersionKey struct{}

// RequestAPIVersion is the version the request's path asked for ("1.44"), or
// [APIVersion] when the path had no version prefix.
func RequestAPIVersion(r *http.Request) string {
	if v, ok := r.Context().Value(apiVersionKey{}).(string); ok {
		return v
	}
	return api.APIVersion
}

// longRequest is how long a changing request must take for the daemon to
// give the memory it used back to the system afterwards (see releaseMemory).
const longRequest = time.Second

// releasing is set while a releaseMemory is under way or was done lately.
var releasing atomic.Bool

// releaseMemory returns the Go heap's free pages to the system, in the
// background and at most once every few seconds. A load, import, pull or
// commit of a big layer raises the heap for a while (index building,
// tar-split data); an idle daemon runs no GC afterwards, so without this it
// kept that peak (300-450 MiB after the bench's layers) while its live heap
// was a few tens of MiB.
func releaseMemory() {
	if !releasing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		debug.FreeOSMemory()
		time.Sleep(5 * time.Second)
		releasing.Store(false)
	}()
}

// ServeHTTP implements http.Handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	version := api.APIVersion
	if m := versionPrefix.FindStringSubmatch(p); m != nil {
		version = m[1]
		p = p[len(m[0])-len(m[2]):]
		if versionLess(version, api.MinAPIVersion) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, api.MinAPIVersion))
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), apiVersionKey{}, version))
	segs := splitPath(p)
	pathMatched := false
	for _, rte := range rt.routes {
		vars, ok := match(rte.segments, segs)
		if !ok {
			continue
		}
		pathMatched = true
		if rte.method != r.Method {
			continue
		}
		for k, v := range vars {
			r.SetPathValue(k, v)
		}
		rw := &trackingWriter{ResponseWriter: w}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Changes are logged, reads are not: the log says what
			// happened to the store without drowning in pings.
			start := time.Now()
			defer func() {
				took := time.Since(start)
				rt.log.Info("api", "method", r.Method, "path", r.URL.Path, "took", took.Round(time.Millisecond))
				if took >= longRequest {
					releaseMemory()
				}
			}()
		}
		if err := rte.handler(rw, r); err != nil {
			code := StatusOf(err)
			if code >= 500 {
				rt.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			if rw.wrote {
				return
			}
			writeError(w, code, err.Error())
		}
		return
	}
	if pathMatched {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	writeError(w, http.StatusNotFound, "page not found")
}

// trackingWriter remembers whether a handler has started its response, so
// that a late error is not written into the middle of a stream.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) { t.wrote = true; t.ResponseWriter.WriteHeader(code) }
func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// Flush lets streaming handlers push progress lines out immediately.
func (t *trackingWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		t.wrote = true
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (hijacking for
// attach).
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match matches path segments against a pattern, with backtracking for the
// multi-segment wildcard.
func match(pattern, segs []string) (map[string]string, bool) {
	vars := map[string]string{}
	if matchFrom(pattern, segs, vars) {
		return vars, true
	}
	return nil, false
}

func matchFrom(pattern, segs []string, vars map[string]string) bool {
	if len(pattern) == 0 {
		return len(segs) == 0
	}
	p := pattern[0]
	if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "...}") {
		name := p[1 : len(p)-4]
		// Longest match first: a name may itself end in "json".
		for n := len(segs) - len(pattern) + 1; n >= 1; n-- {
			if matchFrom(pattern[1:], segs[n:], vars) {
				vars[name] = strings.Join(segs[:n], "/")
				return true
			}
		}
		return false
	}
	if len(segs) == 0 {
		return false
	}
	if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
		if !matchFrom(pattern[1:], segs[1:], vars) {
			return false
		}
		vars[p[1:len(p)-1]] = segs[0]
		return true
	}
	return p == segs[0] && matchFrom(pattern[1:], segs[1:], vars)
}

// Sentinel errors a handler can wrap to choose its HTTP status. Errors from
// other packages map the same way when they match containerd's errdefs
// classes (which the moby client also uses), or when registered with
// [RegisterErrorStatus].
var (
	ErrNotFound       = cerrdefs.ErrNotFound
	ErrConflict       = cerrdefs.ErrConflict
	ErrBadParameter   = cerrdefs.ErrInvalidArgument
	ErrNotImplemented = cerrdefs.ErrNotImplemented
)

var extraStatus []struct {
	target error
	code   int
}

// RegisterErrorStatus maps errors matching target (errors.Is) to an HTTP
// status; packages call it from init for their own sentinels, for example
// RegisterErrorStatus(cas.ErrNotFound, http.StatusNotFound).
func RegisterErrorStatus(target error, code int) {
	extraStatus = append(extraStatus, struct {
		target error
		code   int
	}{target, code})
}

// StatusOf is the HTTP status Docker answers for err.
func StatusOf(err error) int {
	for _, e := range extraStatus {
		if errors.Is(err, e.target) {
			return e.code
		}
	}
	switch {
	case cerrdefs.IsNotFound(err):
		return http.StatusNotFound
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err):
		return http.StatusConflict
	case cerrdefs.IsInvalidArgument(err):
		return http.StatusBadRequest
	case cerrdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case cerrdefs.IsUnavailable(err):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return 499
	}
	return http.StatusInternalServerError
}

// errorResponse is Docker's error body.
type errorResponse struct {
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(errorResponse{Message: msg})
}

// WriteJSON answers with v as JSON and the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}

// versionLess compares two "major.minor" API versions.
func versionLess(a, b string) bool {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	if am != bm {
		return am < bm
	}
	return an < bn
}
