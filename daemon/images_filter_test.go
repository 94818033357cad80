package daemon

import "testing"

func TestMatchReference(t *testing.T) {
	refs := []string{"docker.io/library/busybox:latest", "127.0.0.1:5000/app:v1"}
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{"busybox", true},
		{"busybox:latest", true},
		{"busybox:*", true},
		{"127.0.0.1:5000/app", true},
		{"127.0.0.1:5000/app:v1", true},
		{"127.0.0.1:5000/*", true},
		{"127.0.0.1", false},
		{"app", false},
		{"busybox:v2", false},
	} {
		if got := matchReference([]string{tc.pattern}, refs); got != tc.want {
			t.Errorf("reference=%s: got %v, want %v", tc.pattern, got, tc.want)
		}
	}
}
