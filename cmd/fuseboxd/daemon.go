package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/daemon"
	"github.com/fusebox/fusebox/registry"
)

func init() { register(newDaemonCmd) }

func newDaemonCmd() *cobra.Command {
	var reg registry.Config
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the fusebox daemon in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if err := reg.Validate(); err != nil {
				return err
			}
			d, err := daemon.New(ctx, daemon.Config{Root: globals.Root, Host: globals.Host, Registry: reg})
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
	// Also read from <root>/daemon.json ("registry-mirrors",
	// "insecure-registries"), which a daemon the CLI starts uses.
	cmd.Flags().StringArrayVar(&reg.Mirrors, "registry-mirror", nil, "Preferred registry mirror for docker.io (http[s]://host[:port])")
	cmd.Flags().StringArrayVar(&reg.Insecure, "insecure-registry", nil, "Registry (host[:port] or CIDR) that may be reached over plain HTTP")
	return cmd
}
