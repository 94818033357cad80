package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("inspect", newInspectCmd) }

// newInspectCmd is the top-level inspect: each name is looked up as a
// container, then as an image (or only as --type says).
func newInspectCmd() *cobra.Command { return inspectCmd("inspect [OPTIONS] NAME|ID [NAME|ID...]", "") }

func inspectCmd(use, only string) *cobra.Command {
	var (
		format, typ string
		size        bool
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: "Return low-level information on objects",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if only != "" {
				typ = only
			}
			if typ != "" && typ != "container" && typ != "image" {
				return fmt.Errorf("%q is not a valid value for --type", typ)
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			var raws []json.RawMessage
			var errs []error
			for _, name := range args {
				if typ == "" || typ == "container" {
					res, err := c.ContainerInspect(ctx, name, client.ContainerInspectOptions{Size: size})
					if err == nil {
						raws = append(raws, res.Raw)
						continue
					}
					if !cerrdefs.IsNotFound(err) || typ == "container" {
						errs = append(errs, err)
						continue
					}
				}
				raw, err := c.ImageInspectRaw(ctx, name)
				if err != nil {
					if cerrdefs.IsNotFound(err) {
						err = fmt.Errorf("no such object: %s", name)
					}
					errs = append(errs, err)
					continue
				}
				raws = append(raws, raw)
			}
			if err := printInspect(cmd.OutOrStdout(), format, raws); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&format, "format", "f", "", "Format output using a custom template")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	if only == "" {
		fl.StringVar(&typ, "type", "", "Only inspect objects of the given type (container, image)")
	}
	return cmd
}

// printInspect writes inspect results as docker does: each through the
// --format template, or all as one indented JSON array ("[]" for none).
// newObjectInspectCmd is `image|network|volume inspect [-f FORMAT] NAME...`:
// the objects found are printed (a JSON array, or the template once per
// object), then the names not found fail the command, as docker does.
func newObjectInspectCmd(noun, plural string, get func(ctx context.Context, c *client.Client, name string) (json.RawMessage, error)) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   fmt.Sprintf("inspect [OPTIONS] %s [%s...]", noun, noun),
		Short: "Display detailed information on one or more " + plural,
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
				raw, err := get(cmd.Context(), c, name)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				raws = append(raws, raw)
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

func printInspect(out io.Writer, format string, raws []json.RawMessage) error {
	if format != "" && format != "json" {
		for _, r := range raws {
			var v any
			if err := json.Unmarshal(r, &v); err != nil {
				return err
			}
			if err := formatter.Execute(out, format, v); err != nil {
				return err
			}
		}
		return nil
	}
	b, err := json.MarshalIndent(raws, "", "    ")
	if err != nil {
		return err
	}
	if len(raws) == 0 {
		b = []byte("[]")
	}
	_, err = fmt.Fprintln(out, string(b))
	return err
}
