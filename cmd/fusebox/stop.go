package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() {
	register("stop", newStopCmd)
	register("restart", newRestartCmd)
}

func newStopCmd() *cobra.Command {
	return newStopSignalCmd("stop", "Stop one or more running containers",
		func(ctx context.Context, c *client.Client, name, sig string, timeout *int) error {
			_, err := c.ContainerStop(ctx, name, client.ContainerStopOptions{Signal: sig, Timeout: timeout})
			return err
		})
}

func newRestartCmd() *cobra.Command {
	return newStopSignalCmd("restart", "Restart one or more containers",
		func(ctx context.Context, c *client.Client, name, sig string, timeout *int) error {
			_, err := c.ContainerRestart(ctx, name, client.ContainerRestartOptions{Signal: sig, Timeout: timeout})
			return err
		})
}

// newStopSignalCmd builds a verb that stops containers as docker does: the
// stop signal (-s), then SIGKILL after -t seconds (the container's own stop
// timeout when -t is not given).
func newStopSignalCmd(verb, short string, do func(ctx context.Context, c *client.Client, name, sig string, timeout *int) error) *cobra.Command {
	var (
		timeout int
		sig     string
	)
	cmd := &cobra.Command{
		Use:   verb + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			var t *int
			if cmd.Flags().Changed("timeout") {
				t = &timeout
			}
			return forEach(cmd, args, func(name string) error {
				return do(cmd.Context(), c, name, sig, t)
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return cmd
}
