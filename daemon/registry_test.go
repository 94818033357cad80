package daemon

import (
	"errors"
	"testing"
)

func TestPullReference(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		from, tag string
		want      string
		all       bool
		bad       bool
	}{
		{"docker.io/library/busybox", "latest", "docker.io/library/busybox:latest", false, false},
		{"busybox", "1.36", "docker.io/library/busybox:1.36", false, false},
		{"busybox:1.36", "", "docker.io/library/busybox:1.36", false, false},
		{"busybox", "", "docker.io/library/busybox", true, false},
		{"127.0.0.1:5000/app", dg, "127.0.0.1:5000/app@" + dg, false, false},
		{"busybox@" + dg, "", "docker.io/library/busybox@" + dg, false, false},
		{"Busybox", "latest", "", false, true},
		{"busybox", "bad tag", "", false, true},
		{"busybox", "sha256:nothex", "", false, true},
	} {
		ref, all, err := pullReference(c.from, c.tag)
		if c.bad {
			if !errors.Is(err, ErrBadParameter) {
				t.Errorf("%s %s: %v, want a bad parameter", c.from, c.tag, err)
			}
			continue
		}
		if err != nil || ref.String() != c.want || all != c.all {
			t.Errorf("%s %s: %v all=%v %v, want %s all=%v", c.from, c.tag, ref, all, err, c.want, c.all)
		}
	}
}
