package main

import (
	"errors"
	"path/filepath"

	"github.com/spf13/cobra"
)

func init() { register("umount", newUmountCmd) }

func newUmountCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "umount DIR [DIR...]",
		Short: "Unmount an image mounted with 'fusebox mount'",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			var errs []error
			for _, a := range args {
				dir, err := filepath.Abs(a)
				if err == nil {
					err = c.Unmount(cmd.Context(), dir)
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
}
