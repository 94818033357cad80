package main

import (
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/launcher"
)

func init() { register(newShimCmd) }

// newShimCmd is `fusebox shim STATE_DIR`, the per-container process the
// daemon starts with launcher.Start: it is the container's parent, so that
// libcontainer never runs inside the process that serves FUSE. Hidden:
// users never call it.
func newShimCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "shim STATE_DIR",
		Short:  "Run one container under libcontainer (started by the daemon)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ready io.WriteCloser
			if fd, err := strconv.Atoi(os.Getenv(launcher.ReadyFdEnv)); err == nil && fd > 2 {
				// Not for the container's init, which the shim forks.
				unix.CloseOnExec(fd)
				ready = os.NewFile(uintptr(fd), "ready")
			}
			os.Unsetenv(launcher.ReadyFdEnv)
			return launcher.RunShim(cmd.Context(), args[0], ready)
		},
	}
}
