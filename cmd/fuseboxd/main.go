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

	"github.com/fusebox/fusebox/internal/rootflags"
)

// commands holds the constructors of the commands; each lives in a file of
// its own and adds itself from an init function.
var commands []func() *cobra.Command

func register(newCmd func() *cobra.Command) { commands = append(commands, newCmd) }

// globals are the root flags every command shares.
var globals rootflags.Values

func main() {
	root := &cobra.Command{
		Use:              "fuseboxd [OPTIONS] COMMAND",
		Short:            "fusebox's engine: the daemon, the container shim, the benchmark harness",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
	}
	globals.Add(root.Flags())
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "fuseboxd:", err)
		os.Exit(1)
	}
}
