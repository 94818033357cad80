package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
	"github.com/fusebox/fusebox/registry/auth"
)

func init() { register("search", newSearchCmd) }

// searchRow is one line of `search`; --format templates name its fields.
type searchRow struct {
	Name        string
	Description string
	StarCount   string
	IsOfficial  string
	IsAutomated string
}

func newSearchCmd() *cobra.Command {
	var (
		limit   int
		filters []string
		format  string
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "search [OPTIONS] TERM",
		Short: "Search for images in a registry",
		Long: "Search for images in a registry: the one TERM names (HOST/NAME), else the\n" +
			"daemon's first registry mirror, else Docker Hub. A registry without a\n" +
			"search API is answered from its catalog (/v2/_catalog).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			if format != "" {
				if _, err := formatter.Parse(strings.TrimPrefix(format, "table")); err != nil {
					return err
				}
			}
			auth, err := authHeaderFor(auth.SearchServerKey(args[0]))
			if err != nil {
				return err
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ImageSearch(cmd.Context(), args[0], client.ImageSearchOptions{Limit: limit, Filters: f, RegistryAuth: auth})
			if err != nil {
				return err
			}
			var rows []any
			for _, r := range res.Items {
				desc := strings.ReplaceAll(r.Description, "\n", " ")
				if !noTrunc && len([]rune(desc)) > 45 {
					desc = string([]rune(desc)[:44]) + "…"
				}
				row := searchRow{Name: r.Name, Description: desc, StarCount: strconv.Itoa(r.StarCount)}
				if r.IsOfficial {
					row.IsOfficial = "[OK]"
				}
				if r.IsAutomated {
					row.IsAutomated = "[OK]"
				}
				rows = append(rows, row)
			}
			return formatter.List{
				Format:       format,
				DefaultTable: "{{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
				Headers: map[string]string{
					"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED",
				},
			}.Write(cmd.OutOrStdout(), rows)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&limit, "limit", 0, "Max number of search results")
	listVarP(fl, &filters, "filter", "f", "Filter output based on conditions provided (stars=N, is-official=true|false)")
	fl.StringVar(&format, "format", "", "Pretty-print search using a Go template")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	return cmd
}
