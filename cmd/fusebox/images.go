package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/image/imageref"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("images", newImagesCmd) }

// imageRow is one line of `images`; --format templates name its fields.
type imageRow struct {
	Repository   string
	Tag          string
	Digest       string
	ID           string
	CreatedSince string
	CreatedAt    string
	Size         string
	Containers   string
}

func newImagesCmd() *cobra.Command { return imageListCmd("images [OPTIONS] [REPOSITORY[:TAG]]") }

func imageListCmd(use string) *cobra.Command {
	var (
		all, quiet, noTrunc, digests bool
		format                       string
		filters                      []string
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := listFilters(filters, format, quiet)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				f.Add("reference", args[0])
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ImageList(cmd.Context(), client.ImageListOptions{All: all, Filters: f})
			if err != nil {
				return err
			}
			items := res.Items
			sort.SliceStable(items, func(i, j int) bool { return items[i].Created > items[j].Created })
			var rows []any
			for _, s := range items {
				id := s.ID
				if !noTrunc {
					id = formatter.ShortID(id)
				}
				created := time.Unix(s.Created, 0)
				base := imageRow{
					ID:           id,
					CreatedSince: formatter.Ago(created),
					CreatedAt:    created.Format("2006-01-02 15:04:05 -0700 MST"),
					Size:         formatter.Size(s.Size),
					Containers:   "N/A",
					Digest:       "<none>",
				}
				if s.Containers >= 0 {
					base.Containers = fmt.Sprint(s.Containers)
				}
				digestsByRepo := map[string]string{}
				for _, rd := range s.RepoDigests {
					if repo, d, ok := strings.Cut(rd, "@"); ok {
						digestsByRepo[repo] = d
					}
				}
				if len(s.RepoTags) == 0 {
					r := base
					r.Repository, r.Tag = "<none>", "<none>"
					rows = append(rows, r)
					continue
				}
				for _, rt := range s.RepoTags {
					r := base
					r.Repository, r.Tag = imageref.FamiliarRepoTag(rt)
					if d, ok := digestsByRepo[r.Repository]; ok {
						r.Digest = d
					}
					rows = append(rows, r)
				}
			}
			if quiet {
				rows = uniqueIDs(rows)
			}
			table := "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			if digests {
				table = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			return formatter.List{
				Format:       format,
				DefaultTable: table,
				Headers: map[string]string{
					"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
					"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
				},
				Quiet:      quiet,
				QuietField: "ID",
			}.Write(cmd.OutOrStdout(), rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVar(&digests, "digests", false, "Show digests")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	listVarP(fl, &filters, "filter", "f", "Filter output based on conditions provided (dangling=true, reference=NAME)")
	return cmd
}

// uniqueIDs keeps one row per image for -q, as Docker does.
func uniqueIDs(rows []any) []any {
	seen := map[string]bool{}
	var out []any
	for _, r := range rows {
		id := r.(imageRow).ID
		if !seen[id] {
			seen[id] = true
			out = append(out, r)
		}
	}
	return out
}
