package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fusebox/fusebox/client"
)

func init() { register("commit", newCommitCmd) }

// newCommitCmd is `commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]`: a new
// image of the container's image and its changes; it prints the image ID.
func newCommitCmd() *cobra.Command {
	var (
		message, author string
		changes         []string
		pause           bool
	)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ref string
			if len(args) == 2 {
				ref = args[1]
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			opts := client.ContainerCommitOptions{Reference: ref, Comment: message, Author: author, Changes: changes, NoPause: !pause}
			if !term.IsTerminal(int(os.Stderr.Fd())) {
				res, err := c.ContainerCommit(cmd.Context(), args[0], opts)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), res.ID)
				return nil
			}
			// On a terminal, a big change gets a progress bar.
			stream, err := c.CommitStream(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			defer stream.Close()
			var res struct{ ID string }
			err = readStream(stream, cmd.OutOrStdout(), false, func(aux json.RawMessage) { _ = json.Unmarshal(aux, &res) })
			if err != nil {
				return err
			}
			if res.ID == "" {
				return errors.New("the daemon's commit answer has no image ID")
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&message, "message", "m", "", "Commit message")
	fl.StringVarP(&author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	listVarP(fl, &changes, "change", "c", "Apply Dockerfile instruction to the created image")
	fl.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}
