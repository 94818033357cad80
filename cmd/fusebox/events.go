package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("events", newEventsCmd) }

func newEventsCmd() *cobra.Command {
	var (
		since, until, format string
		filters              []string
	)
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilterFlags(filters)
			if err != nil {
				return err
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res := c.Events(cmd.Context(), client.EventsListOptions{Since: since, Until: until, Filters: f})
			out := cmd.OutOrStdout()
			for {
				select {
				case m, ok := <-res.Messages:
					if !ok {
						return nil
					}
					if format != "" {
						if err := formatter.Execute(out, format, m); err != nil {
							return err
						}
						continue
					}
					var attrs []string
					for k, v := range m.Actor.Attributes {
						attrs = append(attrs, k+"="+v)
					}
					sort.Strings(attrs)
					ts := time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000-07:00")
					fmt.Fprintf(out, "%s %s %s %s (%s)\n", ts, m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
				case err := <-res.Err:
					if err == nil || cmd.Context().Err() != nil {
						return nil
					}
					if strings.Contains(err.Error(), "EOF") {
						return nil
					}
					return err
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "Show all events created since timestamp")
	fl.StringVar(&until, "until", "", "Stream events until this timestamp")
	fl.StringVar(&format, "format", "", "Format the output using the given Go template")
	listVarP(fl, &filters, "filter", "f", "Filter output based on conditions provided")
	return cmd
}
