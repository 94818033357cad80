package image

import (
	"errors"
	"testing"
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		in, full, familiar string
		err                bool
	}{
		{"ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest", false},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", false},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest", false},
		{"example.com:5000/team/app:v1", "example.com:5000/team/app:v1", "example.com:5000/team/app:v1", false},
		{"localhost/app", "localhost/app:latest", "localhost/app:latest", false},
		{"user/app", "docker.io/user/app:latest", "user/app:latest", false},
		{"busybox@sha256:" + hex64, "docker.io/library/busybox@sha256:" + hex64, "busybox@sha256:" + hex64, false},
		{"Ubuntu", "", "", true},
		{"", "", "", true},
		{"bad name", "", "", true},
		{"busybox:", "", "", true},
		{"-x", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseReference(tt.in)
			if tt.err {
				if !errors.Is(err, ErrInvalidReference) {
					t.Fatalf("err = %v, want ErrInvalidReference", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.String() != tt.full || Familiar(r) != tt.familiar {
				t.Errorf("got %s (%s), want %s (%s)", r, Familiar(r), tt.full, tt.familiar)
			}
		})
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseRepoTag(t *testing.T) {
	r, err := ParseRepoTag("mybox", "v1")
	if err != nil || r.String() != "docker.io/library/mybox:v1" {
		t.Fatalf("got %v, %v", r, err)
	}
	r, err = ParseRepoTag("docker.io/library/mybox:v2", "")
	if err != nil || r.Tag() != "v2" {
		t.Fatalf("got %v, %v", r, err)
	}
	if _, err := ParseRepoTag("mybox", "bad tag"); !errors.Is(err, ErrInvalidReference) {
		t.Fatalf("err = %v", err)
	}
}

func TestIsDigestPrefix(t *testing.T) {
	for in, want := range map[string]bool{"0123ab": true, "sha256:" + hex64: true, "busybox": false, "": false, hex64 + "0": false, "abcg": false} {
		if got := IsDigestPrefix(in); got != want {
			t.Errorf("%q: got %v", in, got)
		}
	}
}
