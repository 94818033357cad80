package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	moby "github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { register(newLoadCmd) }

func newLoadCmd() *cobra.Command {
	var (
		input string
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			var size int64
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				st, err := f.Stat()
				if err != nil {
					return err
				}
				if st.IsDir() {
					return fmt.Errorf("%s is a directory: load reads an archive (tar it, or use skopeo to copy an OCI layout)", input)
				}
				in, size = f, st.Size()
			} else if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			body, done := withProgress(in, size, "Loading")
			res, err := c.ImageLoad(cmd.Context(), body, moby.ImageLoadWithQuiet(quiet))
			done()
			if err != nil {
				return err
			}
			defer res.Close()
			return printStream(res, cmd.OutOrStdout(), quiet)
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}
