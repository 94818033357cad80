package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("diff", newDiffCmd) }

// newDiffCmd is `diff CONTAINER` (also `container diff`): the paths the
// container added (A), changed (C) and deleted (D), from its journal.
func newDiffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, ch := range res.Changes {
				fmt.Fprintf(out, "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
}
