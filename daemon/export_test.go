package daemon

import (
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestMergeCommitConfig: the request's config wins field by field, the
// container's fills the rest, as Docker merges them.
func TestMergeCommitConfig(t *testing.T) {
	ctr := &container.Config{
		User: "u", Env: []string{"A=1", "B=2"}, Cmd: []string{"sh"}, WorkingDir: "/w",
		Labels: map[string]string{"l": "c", "k": "c"},
	}
	for _, tc := range []struct {
		name string
		user *container.Config
		want *container.Config
	}{
		{"none", nil, ctr},
		{"env and labels merge", &container.Config{Env: []string{"B=3", "C=4"}, Labels: map[string]string{"l": "u"}},
			&container.Config{User: "u", Env: []string{"A=1", "B=3", "C=4"}, Cmd: []string{"sh"}, WorkingDir: "/w",
				Labels: map[string]string{"l": "u", "k": "c"}}},
		{"cmd replaces", &container.Config{Cmd: []string{"true"}, User: "x"},
			&container.Config{User: "x", Env: []string{"A=1", "B=2"}, Cmd: []string{"true"}, WorkingDir: "/w",
				Labels: map[string]string{"l": "c", "k": "c"}}},
		{"entrypoint drops cmd", &container.Config{Entrypoint: []string{"/e"}},
			&container.Config{User: "u", Env: []string{"A=1", "B=2"}, Entrypoint: []string{"/e"}, WorkingDir: "/w",
				Labels: map[string]string{"l": "c", "k": "c"}}},
	} {
		if got := mergeCommitConfig(tc.user, ctr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
