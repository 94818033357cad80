package main

import (
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("unpause", newUnpauseCmd) }

func newUnpauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return forEach(cmd, args, func(name string) error {
				_, err := c.ContainerUnpause(cmd.Context(), name, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
}
