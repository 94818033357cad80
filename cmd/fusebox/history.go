package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("history", newHistoryCmd) }

// historyRow is one line of `history`.
type historyRow struct {
	ID           string
	CreatedSince string
	CreatedAt    string
	CreatedBy    string
	Size         string
	Comment      string
}

func newHistoryCmd() *cobra.Command {
	var (
		human, noTrunc, quiet bool
		format                string
	)
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var rows []any
			for _, h := range res.Items {
				created := time.Unix(h.Created, 0)
				r := historyRow{
					ID:        h.ID,
					CreatedBy: strings.ReplaceAll(h.CreatedBy, "\t", " "),
					Comment:   h.Comment,
					CreatedAt: created.Format(time.RFC3339),
					Size:      strconv.FormatInt(h.Size, 10),
				}
				if !noTrunc {
					if r.ID != "<missing>" {
						r.ID = formatter.ShortID(r.ID)
					}
					if len([]rune(r.CreatedBy)) > 45 {
						r.CreatedBy = string([]rune(r.CreatedBy)[:44]) + "…"
					}
				}
				if human {
					r.CreatedSince = formatter.Ago(created)
					r.Size = formatter.Size(h.Size)
				} else {
					r.CreatedSince = r.CreatedAt
				}
				rows = append(rows, r)
			}
			return formatter.List{
				Format:       format,
				DefaultTable: "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
				Headers: map[string]string{
					"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
					"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
				},
				Quiet:      quiet,
				QuietField: "ID",
			}.Write(cmd.OutOrStdout(), rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}
