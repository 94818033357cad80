package main

import (
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("logs", newLogsCmd) }

func newLogsCmd() *cobra.Command {
	var (
		follow, timestamps, details bool
		tail, since, until          string
	)
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			info, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			rc, err := c.ContainerLogs(ctx, info.Container.ID, client.ContainerLogsOptions{
				ShowStdout: true, ShowStderr: true, Follow: follow, Timestamps: timestamps,
				Tail: tail, Since: since, Until: until, Details: details,
			})
			if err != nil {
				return err
			}
			defer rc.Close()
			return copyOutput(rc, info.Container.Config.Tty, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "Follow log output")
	fl.BoolVarP(&timestamps, "timestamps", "t", false, "Show timestamps")
	fl.BoolVar(&details, "details", false, "Show extra details provided to logs")
	fl.StringVarP(&tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	fl.StringVar(&since, "since", "", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	fl.StringVar(&until, "until", "", "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	return cmd
}
