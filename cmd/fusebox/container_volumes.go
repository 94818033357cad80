package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"

	"github.com/fusebox/fusebox/volume/mountspec"
)

// mountOpts are the flags of `run` and `create` that give a container
// mounts: -v/--volume, --mount, --tmpfs and --volumes-from.
type mountOpts struct {
	volumes, mounts, tmpfs, volumesFrom []string
}

func (o *mountOpts) addFlags(fl *pflag.FlagSet) {
	listVarP(fl, &o.volumes, "volume", "v", "Bind mount a volume")
	listVarP(fl, &o.mounts, "mount", "", "Attach a filesystem mount to the container")
	listVarP(fl, &o.tmpfs, "tmpfs", "", "Mount a tmpfs directory")
	listVarP(fl, &o.volumesFrom, "volumes-from", "", "Mount volumes from the specified container(s)")
}

// apply puts the flags into the create request as the docker CLI does: a
// -v with a source goes to Binds (a relative source starting with "." made
// absolute), a lone path to Config.Volumes, --mount parsed into Mounts,
// --tmpfs DEST[:OPTIONS] into Tmpfs. The daemon checks the rest.
func (o *mountOpts) apply(cfg *container.Config, hc *container.HostConfig) error {
	for _, v := range o.volumes {
		if v == "" {
			return fmt.Errorf("invalid empty volume spec")
		}
		src, rest, hasSrc := strings.Cut(v, ":")
		if !hasSrc {
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
			continue
		}
		if src == "." || src == ".." || strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
			abs, err := filepath.Abs(src)
			if err != nil {
				return fmt.Errorf("invalid volume spec %q: %w", v, err)
			}
			v = abs + ":" + rest
		}
		hc.Binds = append(hc.Binds, v)
	}
	for _, m := range o.mounts {
		mt, err := mountspec.ParseMountFlag(m)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--mount\" flag: %w", m, err)
		}
		hc.Mounts = append(hc.Mounts, mt)
	}
	for _, t := range o.tmpfs {
		dest, opts, _ := strings.Cut(t, ":")
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		hc.Tmpfs[dest] = opts
	}
	hc.VolumesFrom = append(hc.VolumesFrom, o.volumesFrom...)
	return nil
}
