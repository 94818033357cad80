package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/api/types/container"
	moby "github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register(newStatsCmd) }

func newStatsCmd() *cobra.Command {
	var (
		all, noStream, noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a snapshot of containers' resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			if !noStream {
				return fmt.Errorf("only --no-stream is supported: stats prints one sample")
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			names := args
			if len(names) == 0 {
				res, err := c.ContainerList(ctx, moby.ContainerListOptions{All: all})
				if err != nil {
					return err
				}
				for _, s := range res.Items {
					names = append(names, s.ID)
				}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
			for _, n := range names {
				res, err := c.ContainerStats(ctx, n, moby.ContainerStatsOptions{IncludePreviousSample: true})
				if err != nil {
					return err
				}
				var s container.StatsResponse
				err = json.NewDecoder(res.Body).Decode(&s)
				res.Body.Close()
				if err != nil {
					return fmt.Errorf("decode stats: %w", err)
				}
				id := s.ID
				if !noTrunc {
					id = formatter.ShortID(id)
				}
				cpu := 0.0
				if dSys := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage); dSys > 0 {
					cpu = (float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)) / dSys * float64(s.CPUStats.OnlineCPUs) * 100
				}
				mem := float64(s.MemoryStats.Usage)
				if cache, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && cache < s.MemoryStats.Usage {
					mem -= float64(cache)
				}
				memPct := 0.0
				if s.MemoryStats.Limit > 0 {
					memPct = mem / float64(s.MemoryStats.Limit) * 100
				}
				fmt.Fprintf(tw, "%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t0B / 0B\t0B / 0B\t%d\n", id, strings.TrimPrefix(s.Name, "/"), cpu,
					binarySize(mem), binarySize(float64(s.MemoryStats.Limit)), memPct, s.PidsStats.Current)
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

// binarySize is Docker's stats size: binary units, "1.5MiB".
func binarySize(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%.4g%s", n, units[i])
}
