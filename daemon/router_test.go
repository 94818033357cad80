package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fusebox/fusebox/api"
)

func TestRouter(t *testing.T) {
	rt := NewRouter(nil)
	echo := func(name string) HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			return WriteJSON(w, 200, map[string]string{"route": name, "name": r.PathValue("name"), "version": RequestAPIVersion(r)})
		}
	}
	rt.Handle("GET", "/images/json", echo("list"))
	rt.Handle("GET", "/images/{name...}/json", echo("inspect"))
	rt.Handle("DELETE", "/images/{name...}", echo("delete"))
	rt.Handle("POST", "/containers/{name}/start", echo("start"))
	rt.Handle("GET", "/fail", func(w http.ResponseWriter, r *http.Request) error {
		return NotFoundf("No such image: %s", "x")
	})
	rt.Handle("GET", "/conflict", func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("tag: %w", Conflictf("conflict: unable to delete %s", "abc"))
	})
	tests := []struct {
		method, path string
		code         int
		route, name  string
		version      string
		message      string
	}{
		{"GET", "/images/json", 200, "list", "", api.APIVersion, ""},
		{"GET", "/v1.41/images/json", 200, "list", "", "1.41", ""},
		{"GET", "/v1.50/images/json", 200, "list", "", "1.50", ""},
		{"GET", "/v1.44/images/docker.io/library/busybox:latest/json", 200, "inspect", "docker.io/library/busybox:latest", "1.44", ""},
		{"GET", "/images/busybox/json", 200, "inspect", "busybox", api.APIVersion, ""},
		{"GET", "/images/json/json", 200, "inspect", "json", api.APIVersion, ""},
		{"DELETE", "/images/example.com:5000/a/b:c", 200, "delete", "example.com:5000/a/b:c", api.APIVersion, ""},
		{"POST", "/containers/abc/start", 200, "start", "abc", api.APIVersion, ""},
		{"POST", "/images/json", 405, "", "", "", "method not allowed"},
		{"GET", "/nope", 404, "", "", "", "page not found"},
		{"GET", "/v1.12/images/json", 400, "", "", "", "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{"GET", "/fail", 404, "", "", "", "No such image: x"},
		{"GET", "/v1.44/conflict", 409, "", "", "", "tag: conflict: unable to delete abc"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if tt.code != 200 {
				if body["message"] != tt.message {
					t.Errorf("message %q, want %q", body["message"], tt.message)
				}
				return
			}
			if body["route"] != tt.route || body["name"] != tt.name || body["version"] != tt.version {
				t.Errorf("got %v, want route %s name %s version %s", body, tt.route, tt.name, tt.version)
			}
		})
	}
}

var errCustom = fmt.Errorf("custom sentinel")

func TestStatusOf(t *testing.T) {
	RegisterErrorStatus(errCustom, http.StatusTeapot)
	tests := []struct {
		err  error
		code int
	}{
		{NotFoundf("No such image: x"), 404},
		{Conflictf("x"), 409},
		{BadParameterf("x"), 400},
		{fmt.Errorf("wrapped: %w", ErrBadParameter), 400},
		{fmt.Errorf("wrapped: %w", errCustom), http.StatusTeapot},
		{fmt.Errorf("plain"), 500},
	}
	for _, tt := range tests {
		if got := StatusOf(tt.err); got != tt.code {
			t.Errorf("%v: %d, want %d", tt.err, got, tt.code)
		}
	}
	if err := NotFoundf("No such image: %s", "busybox"); err.Error() != "No such image: busybox" {
		t.Errorf("message %q", err)
	}
}
