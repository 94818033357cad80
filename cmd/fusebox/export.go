package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	moby "github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { register(newExportCmd) }

// newExportCmd is `export [-o FILE] CONTAINER`: the container's root file
// system as a tar stream.
func newExportCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  cobra.ExactArgs(1),
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
			res, err := c.ContainerExport(cmd.Context(), args[0], moby.ContainerExportOptions{})
			if err != nil {
				return err
			}
			defer res.Close()
			if output == "" {
				_, err := io.Copy(out, res)
				return err
			}
			// Next to the target, then renamed: a failed export leaves no
			// partial archive under the name asked for.
			tmp, err := os.CreateTemp(filepath.Dir(output), ".fusebox-export-*")
			if err != nil {
				return fmt.Errorf("failed to export container: %w", err)
			}
			defer os.Remove(tmp.Name())
			if _, err := io.Copy(tmp, res); err != nil {
				tmp.Close()
				return fmt.Errorf("failed to export container: %w", err)
			}
			if err := tmp.Close(); err != nil {
				return fmt.Errorf("failed to export container: %w", err)
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
