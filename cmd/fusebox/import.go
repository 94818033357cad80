package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("import", newImportCmd) }

func newImportCmd() *cobra.Command {
	var (
		changes []string
		message string
	)
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			var in io.Reader = cmd.InOrStdin()
			var size int64
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				st, err := f.Stat()
				if err != nil {
					return err
				}
				in, size = f, st.Size()
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			body, done := withProgress(in, size, "Importing")
			res, err := c.ImageImport(cmd.Context(), client.ImageImportSource{Source: body, SourceName: "-"}, ref, client.ImageImportOptions{Message: message, Changes: changes})
			done()
			if err != nil {
				return err
			}
			defer res.Close()
			return printStream(res, cmd.OutOrStdout(), false)
		},
	}
	listVarP(cmd.Flags(), &changes, "change", "c", "Apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	return cmd
}
