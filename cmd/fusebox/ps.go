package main

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("ps", newPsCmd) }

// containerRow is one line of `ps`; --format templates name its fields.
type containerRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Size, Names, Labels, Networks string
}

func newPsCmd() *cobra.Command { return containerListCmd("ps [OPTIONS]") }

func containerListCmd(use string) *cobra.Command {
	var (
		all, quiet, latest, size, noTrunc bool
		last                              int
		format                            string
		filters                           []string
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := listFilters(filters, format, quiet)
			if err != nil {
				return err
			}
			limit := last
			if latest {
				limit = 1
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ContainerList(cmd.Context(), client.ContainerListOptions{All: all, Limit: limit, Size: size, Filters: f})
			if err != nil {
				return err
			}
			var rows []any
			for _, s := range res.Items {
				id, command := s.ID, s.Command
				if !noTrunc {
					id = formatter.ShortID(id)
					command = ellipsis(command, 20)
				}
				names := make([]string, 0, len(s.Names))
				for _, n := range s.Names {
					names = append(names, strings.TrimPrefix(n, "/"))
				}
				var labels []string
				for k, v := range s.Labels {
					labels = append(labels, k+"="+v)
				}
				created := time.Unix(s.Created, 0)
				row := containerRow{
					ID: id, Image: s.Image, Command: strconv.Quote(command),
					CreatedAt:  created.Format("2006-01-02 15:04:05 -0700 MST"),
					RunningFor: formatter.Ago(created),
					State:      string(s.State), Status: s.Status,
					Names: strings.Join(names, ","), Labels: strings.Join(labels, ","),
					Networks: s.HostConfig.NetworkMode, Ports: portsColumn(s.Ports),
				}
				if size {
					row.Size = formatter.Size(s.SizeRw)
					if s.SizeRootFs > 0 {
						row.Size += " (virtual " + formatter.Size(s.SizeRootFs) + ")"
					}
				}
				rows = append(rows, row)
			}
			table := "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
			if size {
				table += "\t{{.Size}}"
			}
			return formatter.List{
				Format:       format,
				DefaultTable: table,
				Headers: map[string]string{
					"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
					"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
					"Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Networks": "NETWORKS",
				},
				Quiet:      quiet,
				QuietField: "ID",
			}.Write(cmd.OutOrStdout(), rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fl.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	listVarP(fl, &filters, "filter", "f", "Filter output based on conditions provided (status=, name=, ancestor=, label=, volume=)")
	return cmd
}

// ellipsis cuts s to n characters, the last one "…", as Docker's ps does.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
