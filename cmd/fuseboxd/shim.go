package main

import (
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/launcher"
)

func init() { register(newShimCmd) }

// newShimCmd is `fuseboxd shim STATE_DIR`, the per-container process the
// daemon starts with launcher.Start when no fusebox-shim binary sits next
// to it: it is the container's parent, so that libcontainer never runs
// inside the process that serves FUSE. Hidden: users never call it.
func newShimCmd() *cobra.Command {
	return &cobra.Command{
		Use:    launcher.ShimArg + " STATE_DIR",
		Short:  "Run one container under libcontainer (started by the daemon)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return launcher.RunShim(cmd.Context(), args[0])
		},
	}
}
