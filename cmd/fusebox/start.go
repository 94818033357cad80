package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("start", newStartCmd) }

func newStartCmd() *cobra.Command {
	var (
		attach, interactive bool
		detachKeys          string
	)
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				res, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
				if err != nil {
					return err
				}
				cfg := *res.Container.Config
				cfg.AttachStdin = interactive && cfg.OpenStdin
				cfg.AttachStdout, cfg.AttachStderr = true, true
				t := newTerminal(cmd.OutOrStdout(), cmd.ErrOrStderr())
				return runAttached(ctx, c, t, res.Container.ID, &cfg, runAttach{
					rm: res.Container.HostConfig.AutoRemove, sigProxy: !cfg.Tty, detachKeys: detachKeys, start: true,
				})
			}
			return forEach(cmd, args, func(name string) error {
				_, err := c.ContainerStart(ctx, name, client.ContainerStartOptions{})
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	fl.BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	fl.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// forEach runs fn for each named container, printing the name of each one
// it succeeds for and every error, as Docker's multi-container verbs do.
func forEach(cmd *cobra.Command, names []string, fn func(name string) error) error {
	var failed bool
	for _, n := range names {
		if err := fn(n); err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", trimDaemonPrefix(err))
			failed = true
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), n)
	}
	if failed {
		return &statusError{code: 1}
	}
	return nil
}

// trimDaemonPrefix drops the client's "Error response from daemon: ".
func trimDaemonPrefix(err error) string {
	const p = "Error response from daemon: "
	s := err.Error()
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
