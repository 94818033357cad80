package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("volume", newVolumeCmd) }

// newVolumeCmd is the `volume` group: create, ls, rm, inspect, prune.
func newVolumeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume COMMAND",
		Short: "Manage volumes",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newVolumeCreateCmd(), newVolumeListCmd(), newVolumeRemoveCmd(), newObjectInspectCmd("VOLUME", "volumes", func(ctx context.Context, c *client.Client, name string) (json.RawMessage, error) {
		res, err := c.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
		if err != nil {
			return nil, err
		}
		return json.Marshal(res.Volume)
	}), newPruneCmd(volumePrune))
	return cmd
}

// keyValues reads KEY=VALUE flags (labels, driver options) into a map.
func keyValues(what string, vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range vals {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid %s %q: empty name", what, kv)
		}
		out[k] = v
	}
	return out, nil
}

func newVolumeCreateCmd() *cobra.Command {
	var name, driver string
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return fmt.Errorf("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			l, err := keyValues("label", labels)
			if err != nil {
				return err
			}
			o, err := keyValues("option", opts)
			if err != nil {
				return err
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{Name: name, Driver: driver, Labels: l, DriverOpts: o})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Volume.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "Specify volume name")
	fl.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	listVarP(fl, &labels, "label", "", "Set metadata for a volume")
	listVarP(fl, &opts, "opt", "o", "Set driver specific options")
	return cmd
}

// volumeRow is one line of `volume ls`; --format templates name its fields.
type volumeRow struct {
	Driver, Name, Scope, Mountpoint, Labels, CreatedAt string
}

func newVolumeListCmd() *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := listFilters(filters, format, quiet)
			if err != nil {
				return err
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: f})
			if err != nil {
				return err
			}
			var rows []any
			for _, v := range res.Items {
				var labels []string
				for k, val := range v.Labels {
					labels = append(labels, k+"="+val)
				}
				rows = append(rows, volumeRow{
					Driver: v.Driver, Name: v.Name, Scope: v.Scope, Mountpoint: v.Mountpoint,
					Labels: strings.Join(labels, ","), CreatedAt: v.CreatedAt,
				})
			}
			return formatter.List{
				Format:       format,
				DefaultTable: "{{.Driver}}\t{{.Name}}",
				Headers: map[string]string{
					"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE",
					"Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "CreatedAt": "CREATED",
				},
				Quiet:      quiet,
				QuietField: "Name",
			}.Write(cmd.OutOrStdout(), rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	listVarP(fl, &filters, "filter", "f", "Provide filter values (e.g. 'dangling=true')")
	return cmd
}

func newVolumeRemoveCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return forEach(cmd, args, func(name string) error {
				_, err := c.VolumeRemove(cmd.Context(), name, client.VolumeRemoveOptions{Force: force})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}
