package main

import (
	moby "github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func init() { register(newStopCmd) }

func newStopCmd() *cobra.Command {
	var (
		timeout int
		sig     string
	)
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			opts := moby.ContainerStopOptions{Signal: sig}
			if cmd.Flags().Changed("timeout") {
				opts.Timeout = &timeout
			}
			return forEach(cmd, args, func(name string) error {
				_, err := c.ContainerStop(cmd.Context(), name, opts)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return cmd
}
