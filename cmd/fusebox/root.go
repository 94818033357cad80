package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// commands holds the constructors of the top-level commands. Each verb lives
// in a file of its own and adds itself here from an init function, so that
// adding a verb never means editing this file.
var commands []func() *cobra.Command

// register adds a top-level command constructor; call it from init.
func register(newCmd func() *cobra.Command) { commands = append(commands, newCmd) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "fusebox [OPTIONS] COMMAND",
		Short:         "A container toolkit on a userspace union filesystem",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	return root
}

// run executes the CLI and returns the process exit status.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "fusebox:", err)
		return 1
	}
	return 0
}
