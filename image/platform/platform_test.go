package platform

import (
	"runtime"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want ocispec.Platform
		bad  bool
	}{
		{in: "", want: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}},
		{in: "linux/amd64", want: ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "Linux/ARM64/V8", want: ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{in: "linux", bad: true},
		{in: "linux/", bad: true},
		{in: "/amd64", bad: true},
		{in: "a/b/c/d", bad: true},
	} {
		got, err := Parse(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("%q: %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.OS != tt.want.OS || got.Architecture != tt.want.Architecture || got.Variant != tt.want.Variant {
			t.Errorf("%q: %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
