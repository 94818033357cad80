package image

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fusebox/fusebox/image/platform"
)

// ParsePlatform reads "os/arch[/variant]"; empty is this machine's
// linux/GOARCH. See [platform.Parse].
func ParsePlatform(s string) (ocispec.Platform, error) { return platform.Parse(s) }
