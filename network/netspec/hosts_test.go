package netspec

import (
	"errors"
	"strings"
	"testing"
)

func TestParseExtraHost(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"db:10.0.0.5", "10.0.0.5\tdb\n", true},
		{"db=10.0.0.5", "10.0.0.5\tdb\n", true},
		{"v6:fd00::5", "fd00::5\tv6\n", true},
		{"v6=[fd00::5]", "fd00::5\tv6\n", true},
		{"nocolon", "", false},
		{"db:notanip", "", false},
		{":10.0.0.5", "", false},
	} {
		e, err := ParseExtraHost(tt.in)
		if !tt.ok {
			if !errors.Is(err, ErrInvalidHost) {
				t.Errorf("ParseExtraHost(%q) = %v, %v; want ErrInvalidHost", tt.in, e, err)
			}
			continue
		}
		if err != nil || e.IP.String()+"\t"+strings.Join(e.Names, " ")+"\n" != tt.want {
			t.Errorf("ParseExtraHost(%q) = %v, %v", tt.in, e, err)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Mode
		bad  bool
	}{
		{in: "", want: Mode{Kind: KindBridge, Network: "bridge"}},
		{in: "default", want: Mode{Kind: KindBridge, Network: "bridge"}},
		{in: "bridge", want: Mode{Kind: KindBridge, Network: "bridge"}},
		{in: "none", want: Mode{Kind: KindNone}},
		{in: "host", want: Mode{Kind: KindHost}},
		{in: "container:web", want: Mode{Kind: KindContainer, Container: "web"}},
		{in: "mynet", want: Mode{Kind: KindBridge, Network: "mynet"}},
		{in: "container:", bad: true},
		{in: "container", bad: true},
		{in: "bad/name", bad: true},
	} {
		got, err := ParseMode(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrInvalidMode) {
				t.Errorf("ParseMode(%q) = %v, %v; want ErrInvalidMode", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseMode(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if tt.in != "" && tt.in != "default" && got.String() != tt.in {
			t.Errorf("Mode(%q).String() = %q", tt.in, got.String())
		}
	}
}

// TestHostsLinks checks --link entries, the container's own line, that the
// default bridge gives no name resolution (as in Docker), and host mode.
