package daemon

import (
	"strconv"

	"github.com/fusebox/fusebox/api"
	"github.com/fusebox/fusebox/launcher"
)

// securityOpts are the `--security-opt` values fusebox acts on.
type securityOpts struct {
	// seccomp is launcher.Options.Seccomp: "" (Docker's default
	// profile), "builtin", "unconfined", or a profile in Docker's JSON
	// format, which the docker CLI reads from the file it was given.
	seccomp         string
	noNewPrivileges bool
}

// parseSecurityOpts reads HostConfig.SecurityOpt as Docker's daemon does
// (KEY=VALUE, or the older KEY:VALUE), with Docker's messages. fusebox has
// no AppArmor or SELinux, so apparmor= and label= are refused like any
// other key it doesn't know, rather than silently ignored. A seccomp
// profile that can't be turned into a filter is refused here, so that a
// container with one is never created.
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var so securityOpts
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			so.noNewPrivileges = true
			continue
		}
		key, val, ok := api.CutSecurityOpt(opt)
		if !ok {
			return so, BadParameterf("invalid --security-opt 1: %q", opt)
		}
		switch key {
		case "seccomp":
			if err := launcher.CheckSeccompProfile(val); err != nil {
				return so, BadParameterf("%v", err)
			}
			so.seccomp = val
		case "no-new-privileges":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return so, BadParameterf("invalid --security-opt 2: %q", opt)
			}
			so.noNewPrivileges = b
		default:
			return so, BadParameterf("invalid --security-opt 2: %q", opt)
		}
	}
	return so, nil
}

// securityInfo is what `info` says of the container's confinement: the
// seccomp profile when the shim can load one, otherwise a warning, as
// Docker on a host without seccomp. fusebox's shim and daemon are built
// together (`make build`), so this binary's support stands for the shim's.
func securityInfo() (options, warnings []string) {
	if launcher.SeccompSupported() {
		return []string{"name=seccomp,profile=builtin"}, nil
	}
	return []string{}, []string{"WARNING: fusebox was " + launcher.NoSeccompSupport + ": containers run without a seccomp profile"}
}
