package launcher

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBuildSpecUserMounts(t *testing.T) {
	o := validOptions()
	o.Mounts = []specs.Mount{
		{Destination: "/data", Type: "bind", Source: "/vols/v/_data", Options: []string{"rbind", "rprivate"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
	}
	s, err := BuildSpec(o)
	if err != nil {
		t.Fatal(err)
	}
	var shm, data int
	last := s.Mounts[len(s.Mounts)-1]
	for _, m := range s.Mounts {
		switch m.Destination {
		case "/dev/shm":
			shm++
			if m.Source != "tmpfs" {
				t.Errorf("the default /dev/shm was kept: %+v", m)
			}
		case "/data":
			data++
		}
	}
	if shm != 1 || data != 1 || last.Destination != "/dev/shm" {
		t.Errorf("mounts %+v", s.Mounts)
	}
	for _, bad := range []specs.Mount{
		{Destination: "rel", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/x", Type: "bind", Source: "rel"},
	} {
		o.Mounts = []specs.Mount{bad}
		if _, err := BuildSpec(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("BuildSpec with mount %+v: %v", bad, err)
		}
	}
}
