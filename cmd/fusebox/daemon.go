package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/daemon"
)

func init() { register(newDaemonCmd) }

func newDaemonCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the fusebox daemon in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			d, err := daemon.New(ctx, daemon.Config{Root: globals.root, Host: globals.host})
			if err != nil {
				return err
			}
			serr := d.Serve(ctx)
			if cerr := d.Close(); serr == nil {
				serr = cerr
			}
			return serr
		},
	}
}
