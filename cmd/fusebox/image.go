package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	moby "github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register(newImageCmd) }

// newImageCmd is the `image` group: Docker's management command names for
// the same verbs as the top-level ones, plus inspect and prune.
func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	ls := imageListCmd("ls [OPTIONS] [REPOSITORY[:TAG]]")
	ls.Aliases = []string{"list"}
	rm := imageRemoveCmd("rm [OPTIONS] IMAGE [IMAGE...]")
	rm.Aliases = []string{"remove"}
	withUse := func(c *cobra.Command, use string) *cobra.Command { c.Use = use; return c }
	cmd.AddCommand(ls, rm,
		withUse(newHistoryCmd(), "history [OPTIONS] IMAGE"),
		withUse(newTagCmd(), "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]"),
		withUse(newLoadCmd(), "load [OPTIONS]"),
		withUse(newSaveCmd(), "save [OPTIONS] IMAGE [IMAGE...]"),
		withUse(newImportCmd(), "import [OPTIONS] file|- [REPOSITORY[:TAG]]"),
		newImageInspectCmd(), newImagePruneCmd())
	return cmd
}

func newImageInspectCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			var raws []json.RawMessage
			var errs []error
			for _, name := range args {
				var raw bytes.Buffer
				if _, err := c.ImageInspect(cmd.Context(), name, moby.ImageInspectWithRawResponse(&raw)); err != nil {
					errs = append(errs, err)
					continue
				}
				raws = append(raws, json.RawMessage(bytes.TrimSpace(raw.Bytes())))
			}
			if err := printInspect(cmd.OutOrStdout(), format, raws); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func newImagePruneCmd() *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			warning := "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] "
			}
			if !force {
				fmt.Fprint(cmd.ErrOrStderr(), warning)
				line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return nil
				}
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			f := moby.Filters{}
			if all {
				f.Add("dangling", "false")
			}
			res, err := c.ImagePrune(cmd.Context(), moby.ImagePruneOptions{Filters: f})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(res.Report.ImagesDeleted) > 0 {
				fmt.Fprintln(out, "Deleted Images:")
				for _, d := range res.Report.ImagesDeleted {
					if d.Untagged != "" {
						fmt.Fprintln(out, "untagged:", d.Untagged)
					}
					if d.Deleted != "" {
						fmt.Fprintln(out, "deleted:", d.Deleted)
					}
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, "Total reclaimed space:", formatter.Size(int64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
