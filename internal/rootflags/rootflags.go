// Package rootflags is the global options both fusebox binaries take before
// their command: the CLI (fusebox) and the engine (fuseboxd), to which the
// CLI passes them on for `daemon` and `bench`.
package rootflags

import (
	"os"

	"github.com/spf13/pflag"

	"github.com/fusebox/fusebox/api"
)

// Values are the daemon's socket and state directory.
type Values struct {
	Host string
	Root string
}

// Add defines -H/--host and --root on fs, with FUSEBOX_HOST and
// FUSEBOX_ROOT, then api's defaults, as their defaults.
func (v *Values) Add(fs *pflag.FlagSet) {
	fs.StringVarP(&v.Host, "host", "H", envOr("FUSEBOX_HOST", api.DefaultHost), "Daemon socket (unix:///path; env FUSEBOX_HOST)")
	fs.StringVar(&v.Root, "root", envOr("FUSEBOX_ROOT", api.DefaultRoot), "Root directory of the daemon's state (env FUSEBOX_ROOT)")
}

// Args are the options as a command line, to pass on.
func (v *Values) Args() []string { return []string{"--root", v.Root, "-H", v.Host} }

func envOr(name, def string) string {
	if val := os.Getenv(name); val != "" {
		return val
	}
	return def
}
