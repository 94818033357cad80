package main

import (
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("rm", newRmCmd) }

func newRmCmd() *cobra.Command { return containerRemoveCmd("rm [OPTIONS] CONTAINER [CONTAINER...]") }

func containerRemoveCmd(use string) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:   use,
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return forEach(cmd, args, func(name string) error {
				_, err := c.ContainerRemove(cmd.Context(), name, client.ContainerRemoveOptions{Force: force, RemoveVolumes: volumes})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}
