package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("system", newSystemCmd) }

func newSystemCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Manage fusebox",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	info := newInfoCmd()
	cmd.AddCommand(newSystemDFCmd(), newSystemFsckCmd(), info)
	return cmd
}

// dfRow is one line of `system df`.
type dfRow struct {
	Type, TotalCount, Active, Size, Reclaimable string
}

func newSystemDFCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show disk usage, and what deduplication saves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			du, err := c.DiskUsage(ctx, client.DiskUsageOptions{Images: true, Containers: true, Volumes: true, BuildCache: true})
			if err != nil {
				return err
			}
			u, err := c.StoreUsage(ctx)
			if err != nil {
				return err
			}
			reclaim := func(r, total int64) string {
				if total == 0 {
					return formatter.Size(r)
				}
				return fmt.Sprintf("%s (%d%%)", formatter.Size(r), r*100/total)
			}
			rows := []any{
				dfRow{"Images", fmt.Sprint(du.Images.TotalCount), fmt.Sprint(du.Images.ActiveCount), formatter.Size(du.Images.TotalSize), reclaim(du.Images.Reclaimable, du.Images.TotalSize)},
				dfRow{"Containers", fmt.Sprint(du.Containers.TotalCount), fmt.Sprint(du.Containers.ActiveCount), formatter.Size(du.Containers.TotalSize), reclaim(du.Containers.Reclaimable, du.Containers.TotalSize)},
				dfRow{"Local Volumes", fmt.Sprint(du.Volumes.TotalCount), fmt.Sprint(du.Volumes.ActiveCount), formatter.Size(du.Volumes.TotalSize), reclaim(du.Volumes.Reclaimable, du.Volumes.TotalSize)},
				dfRow{"Build Cache", fmt.Sprint(du.BuildCache.TotalCount), fmt.Sprint(du.BuildCache.ActiveCount), formatter.Size(du.BuildCache.TotalSize), reclaim(du.BuildCache.Reclaimable, du.BuildCache.TotalSize)},
			}
			out := cmd.OutOrStdout()
			if err := (formatter.List{
				Format:       format,
				DefaultTable: "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
				Headers:      map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"},
			}).Write(out, rows); err != nil {
				return err
			}
			if format != "" {
				return nil
			}
			fmt.Fprintln(out)
			fmt.Fprintln(out, "Store:")
			fmt.Fprintf(out, " Layers:          %d\n", u.Layers)
			fmt.Fprintf(out, " Content stored:  %s (%d files, %d inline)\n", formatter.Size(u.ObjectBytes+u.InlineBytes), u.ObjectFiles, u.InlineObjects)
			fmt.Fprintf(out, " Content logical: %s\n", formatter.Size(u.LogicalBytes))
			fmt.Fprintf(out, " Saved by dedup:  %s\n", formatter.Size(u.SavedBytes))
			fmt.Fprintf(out, " Metadata:        %s\n", formatter.Size(u.MetadataBytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

func newSystemFsckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "fsck",
		Short: "Re-hash every stored file and check every layer index",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := c.Fsck(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, p := range rep.Problems {
				fmt.Fprintln(out, p.String())
			}
			fmt.Fprintf(out, "checked %d objects, %d layers, %d index entries: %d problems\n", rep.Objects, rep.Layers, rep.Entries, len(rep.Problems))
			if !rep.OK() {
				return fmt.Errorf("store has %d problems", len(rep.Problems))
			}
			return nil
		},
	}
}
