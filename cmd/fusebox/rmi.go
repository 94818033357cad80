package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("rmi", newRmiCmd) }

func newRmiCmd() *cobra.Command { return imageRemoveCmd("rmi [OPTIONS] IMAGE [IMAGE...]") }

func imageRemoveCmd(use string) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   use,
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			var errs []error
			for _, name := range args {
				res, err := c.ImageRemove(cmd.Context(), name, client.ImageRemoveOptions{Force: force, PruneChildren: !noPrune})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, d := range res.Items {
					if d.Untagged != "" {
						fmt.Fprintln(cmd.OutOrStdout(), "Untagged:", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Fprintln(cmd.OutOrStdout(), "Deleted:", d.Deleted)
					}
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}
