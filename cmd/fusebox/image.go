package main

import (
	"context"
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("image", newImageCmd) }

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
		newObjectInspectCmd("IMAGE", "images", func(ctx context.Context, c *client.Client, name string) (json.RawMessage, error) {
			return c.ImageInspectRaw(ctx, name)
		}), newPruneCmd(imagePrune))
	return cmd
}
