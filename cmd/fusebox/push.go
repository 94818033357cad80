package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("push", newPushCmd) }

func newPushCmd() *cobra.Command {
	var (
		all   bool
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := registryReference(args[0], all)
			if err != nil {
				return err
			}
			if named.Digest != "" {
				return errors.New("cannot push a digest reference")
			}
			opts := client.ImagePushOptions{All: all}
			if opts.RegistryAuth, err = authHeader(named); err != nil {
				return err
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ImagePush(cmd.Context(), named.String(), opts)
			if err != nil {
				return err
			}
			defer res.Close()
			return printStream(res, cmd.OutOrStdout(), quiet)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}
