package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { register(newSaveCmd) }

func newSaveCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if output == "" {
				if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ImageSave(cmd.Context(), args)
			if err != nil {
				return err
			}
			defer res.Close()
			if output == "" {
				_, err := io.Copy(out, res)
				return err
			}
			// Write next to the target and rename, so that a failed save
			// leaves no partial archive behind.
			tmp, err := os.CreateTemp(filepath.Dir(output), ".fusebox-save-*")
			if err != nil {
				return fmt.Errorf("failed to save image: %w", err)
			}
			defer os.Remove(tmp.Name())
			if _, err := io.Copy(tmp, res); err != nil {
				tmp.Close()
				return fmt.Errorf("failed to save image: %w", err)
			}
			if err := tmp.Close(); err != nil {
				return fmt.Errorf("failed to save image: %w", err)
			}
			if err := os.Chmod(tmp.Name(), 0o644); err != nil {
				return err
			}
			return os.Rename(tmp.Name(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}
