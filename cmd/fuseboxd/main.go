// Command fuseboxd is fusebox's engine: the daemon (`fusebox daemon` runs
// `fuseboxd daemon`), the per-container shim and init when no fusebox-shim
// sits next to it, and the benchmark harness (`fusebox bench`). The CLI,
// fusebox, is a separate binary that links none of this: every CLI command
// is a process of its own, and the start-up of a binary that linked the
// store, FUSE, libcontainer and the registry client cost `fusebox run`
// about 15 ms more than the CLI alone.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/api"
)

// commands holds the constructors of the commands; each lives in a file of
// its own and adds itself from an init function.
var commands []func() *cobra.Command

func register(newCmd func() *cobra.Command) { commands = append(commands, newCmd) }

// globals are the root flags, the same as the CLI's, which passes them on.
var globals struct {
	host string
	root string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	root := &cobra.Command{
		Use:              "fuseboxd [OPTIONS] COMMAND",
		Short:            "fusebox's engine: the daemon, the container shim, the benchmark harness",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
	}
	root.Flags().StringVarP(&globals.host, "host", "H", envOr("FUSEBOX_HOST", api.DefaultHost), "Daemon socket to listen on (unix:///path; env FUSEBOX_HOST)")
	root.Flags().StringVar(&globals.root, "root", envOr("FUSEBOX_ROOT", api.DefaultRoot), "Root directory of the daemon's state (env FUSEBOX_ROOT)")
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "fuseboxd:", err)
		os.Exit(1)
	}
}
