package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

// pruneVerb is one `KIND prune`: its help, the question it asks without
// -f, and the call that prunes. The four prunes differ only in these.
type pruneVerb struct {
	short string
	// filterHelp is the --filter flag's help; empty: the verb has none.
	filterHelp string
	// allHelp is the -a/--all flag's help; empty: the verb has none.
	allHelp string
	// question is asked without -f; allQuestion instead with --all.
	question, allQuestion string
	// prune asks the daemon to prune and returns what it removed.
	prune func(ctx context.Context, c *client.Client, all bool, f client.Filters) (pruned, error)
}

// pruned is a prune's report: the kind ("Containers"), a line per object
// removed, and the space reclaimed (nil for a kind without sizes).
type pruned struct {
	kind      string
	lines     []string
	reclaimed *uint64
}

var (
	containerPrune = pruneVerb{
		short:      "Remove all stopped containers",
		filterHelp: `Provide filter values (e.g. "until=<timestamp>")`,
		question:   "WARNING! This will remove all stopped containers.",
		prune: func(ctx context.Context, c *client.Client, _ bool, f client.Filters) (pruned, error) {
			res, err := c.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: f})
			return pruned{"Containers", res.Report.ContainersDeleted, &res.Report.SpaceReclaimed}, err
		},
	}
	imagePrune = pruneVerb{
		short:       "Remove unused images",
		allHelp:     "Remove all unused images, not just dangling ones",
		question:    "WARNING! This will remove all dangling images.",
		allQuestion: "WARNING! This will remove all images without at least one container associated to them.",
		prune: func(ctx context.Context, c *client.Client, all bool, f client.Filters) (pruned, error) {
			if all {
				f.Add("dangling", "false")
			}
			res, err := c.ImagePrune(ctx, client.ImagePruneOptions{Filters: f})
			var lines []string
			for _, d := range res.Report.ImagesDeleted {
				if d.Untagged != "" {
					lines = append(lines, "untagged: "+d.Untagged)
				}
				if d.Deleted != "" {
					lines = append(lines, "deleted: "+d.Deleted)
				}
			}
			return pruned{"Images", lines, &res.Report.SpaceReclaimed}, err
		},
	}
	networkPrune = pruneVerb{
		short:      "Remove all unused networks",
		filterHelp: "Provide filter values (e.g. 'label=<key>=<value>')",
		question:   "WARNING! This will remove all custom networks not used by at least one container.",
		prune: func(ctx context.Context, c *client.Client, _ bool, f client.Filters) (pruned, error) {
			res, err := c.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: f})
			return pruned{"Networks", res.Report.NetworksDeleted, nil}, err
		},
	}
	volumePrune = pruneVerb{
		short:       "Remove unused local volumes",
		filterHelp:  "Provide filter values (e.g. 'label=<label>')",
		allHelp:     "Remove all unused volumes, not just anonymous ones",
		question:    "WARNING! This will remove anonymous local volumes not used by at least one container.",
		allQuestion: "WARNING! This will remove all local volumes not used by at least one container.",
		prune: func(ctx context.Context, c *client.Client, all bool, f client.Filters) (pruned, error) {
			res, err := c.VolumePrune(ctx, client.VolumePruneOptions{All: all, Filters: f})
			return pruned{"Volumes", res.Report.VolumesDeleted, &res.Report.SpaceReclaimed}, err
		},
	}
)

// newPruneCmd is `prune [OPTIONS]` for one kind of object.
func newPruneCmd(v pruneVerb) *cobra.Command {
	var (
		all, force bool
		filters    []string
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: v.short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			q := v.question
			if all {
				q = v.allQuestion
			}
			if !force && !confirm(cmd, q+"\nAre you sure you want to continue? [y/N] ") {
				return nil
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			p, err := v.prune(cmd.Context(), c, all, f)
			if err != nil {
				return err
			}
			printPruned(cmd.OutOrStdout(), p)
			return nil
		},
	}
	fl := cmd.Flags()
	if v.allHelp != "" {
		fl.BoolVarP(&all, "all", "a", false, v.allHelp)
	}
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	if v.filterHelp != "" {
		listVarP(fl, &filters, "filter", "", v.filterHelp)
	}
	return cmd
}

// confirm asks the user a prune's yes/no question on stderr and reads the
// answer from stdin; only "y" or "yes" goes on, as with docker.
func confirm(cmd *cobra.Command, question string) bool {
	fmt.Fprint(cmd.ErrOrStderr(), question)
	line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// printPruned prints a prune's report as docker does: "Deleted KIND:" and
// one line per object when there were any, then the space reclaimed when
// the kind has a size (networks don't).
func printPruned(out io.Writer, p pruned) {
	if len(p.lines) > 0 {
		fmt.Fprintf(out, "Deleted %s:\n", p.kind)
		for _, l := range p.lines {
			fmt.Fprintln(out, l)
		}
		if p.reclaimed != nil {
			fmt.Fprintln(out)
		}
	}
	if p.reclaimed != nil {
		fmt.Fprintln(out, "Total reclaimed space:", formatter.Size(int64(*p.reclaimed)))
	}
}
