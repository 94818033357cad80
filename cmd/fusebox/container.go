package main

import (
	"github.com/spf13/cobra"
)

func init() { register("container", newContainerCmd) }

// newContainerCmd is the `container` group: Docker's management command
// names for the container verbs, plus ls and prune.
func newContainerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "container",
		Short: "Manage containers",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	ls := containerListCmd("ls [OPTIONS]")
	ls.Aliases = []string{"list", "ps"}
	rm := containerRemoveCmd("rm [OPTIONS] CONTAINER [CONTAINER...]")
	rm.Aliases = []string{"remove"}
	cmd.AddCommand(ls, rm, newPruneCmd(containerPrune),
		inspectCmd("inspect [OPTIONS] CONTAINER [CONTAINER...]", "container"),
		newRunCmd(), newCreateCmd(), newStartCmd(), newStopCmd(), newRestartCmd(), newKillCmd(),
		newPauseCmd(), newUnpauseCmd(), newWaitCmd(), newTopCmd(), newLogsCmd(), newAttachCmd(),
		newExecCmd(), newRenameCmd(), newStatsCmd(),
		newDiffCmd(), newCommitCmd(), newExportCmd(), newCpCmd())
	return cmd
}
