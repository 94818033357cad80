package main

import (
	moby "github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func init() { register(newContainerCmd) }

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
	cmd.AddCommand(ls, rm, newContainerPruneCmd(),
		inspectCmd("inspect [OPTIONS] CONTAINER [CONTAINER...]", "container"),
		newRunCmd(), newCreateCmd(), newStartCmd(), newStopCmd(), newRestartCmd(), newKillCmd(),
		newPauseCmd(), newUnpauseCmd(), newWaitCmd(), newTopCmd(), newLogsCmd(), newAttachCmd(),
		newExecCmd(), newRenameCmd(), newStatsCmd(),
		newDiffCmd(), newCommitCmd(), newExportCmd(), newCpCmd())
	return cmd
}

func newContainerPruneCmd() *cobra.Command {
	var (
		force   bool
		filters []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !confirm(cmd, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ") {
				return nil
			}
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ContainerPrune(cmd.Context(), moby.ContainerPruneOptions{Filters: f})
			if err != nil {
				return err
			}
			printPruned(cmd.OutOrStdout(), "Containers", res.Report.ContainersDeleted, &res.Report.SpaceReclaimed)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}
