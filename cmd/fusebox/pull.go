package main

import (
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/image/platform"
)

func init() { register("pull", newPullCmd) }

func newPullCmd() *cobra.Command {
	var (
		all          bool
		quiet        bool
		platformFlag string
	)
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			named, err := registryReference(args[0], all)
			if err != nil {
				return err
			}
			opts := client.ImagePullOptions{All: all}
			if platformFlag != "" {
				p, err := platform.Parse(platformFlag)
				if err != nil {
					return err
				}
				opts.Platforms = []ocispec.Platform{p}
			}
			if opts.RegistryAuth, err = authHeader(named); err != nil {
				return err
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ImagePull(cmd.Context(), named.String(), opts)
			if err != nil {
				return err
			}
			defer res.Close()
			if err := printStream(res, cmd.OutOrStdout(), quiet); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), named.String())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all-tags", "a", false, "Download all tagged images in the repository")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	fl.StringVar(&platformFlag, "platform", "", "Set platform if server is multi-platform capable (os/arch[/variant])")
	return cmd
}
