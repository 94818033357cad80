package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Config is an image configuration as Docker writes it: the OCI image
// config with Docker's extensions (Healthcheck, OnBuild, Shell). Its digest
// is the image ID.
type Config = dockerspec.DockerOCIImage

// History is one entry of an image's history.
type History = ocispec.History

// ErrBadConfig is returned for an image configuration that cannot be used.
var ErrBadConfig = errors.New("invalid image config")

// ParseConfig decodes and checks an image config: it must be JSON with a
// rootfs of type "layers" whose diff_ids are valid digests, and its history
// must not name more non-empty layers than there are diff_ids.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	if c.RootFS.Type != "layers" {
		return nil, fmt.Errorf("%w: rootfs type %q, want \"layers\"", ErrBadConfig, c.RootFS.Type)
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("%w: diff_id %q: %v", ErrBadConfig, d, err)
		}
	}
	layers := 0
	for _, h := range c.History {
		if !h.EmptyLayer {
			layers++
		}
	}
	if len(c.History) > 0 && layers > len(c.RootFS.DiffIDs) {
		return nil, fmt.Errorf("%w: history names %d layers, rootfs has %d", ErrBadConfig, layers, len(c.RootFS.DiffIDs))
	}
	return &c, nil
}

// ImportConfig builds the config of an image imported from a rootfs tarball
// (`import`): one layer, the platform of this machine, the --change
// instructions applied and a history entry carrying the message.
func ImportConfig(diffID digest.Digest, created time.Time, source, message string, changes []string) ([]byte, error) {
	c := Config{}
	c.Created = &created
	c.Architecture = runtime.GOARCH
	c.OS = runtime.GOOS
	c.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	if err := ApplyChanges(&c.Config, changes); err != nil {
		return nil, err
	}
	comment := message
	if comment == "" {
		comment = "Imported from " + source
	}
	c.History = []ocispec.History{{Created: &created, Comment: comment}}
	return json.Marshal(c)
}
