package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("attach", newAttachCmd) }

func newAttachCmd() *cobra.Command {
	var (
		noStdin, sigProxy bool
		detachKeys        string
	)
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			res, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			ct := res.Container
			if !ct.State.Running {
				return errors.New("You cannot attach to a stopped container, start it first")
			}
			if ct.State.Paused {
				return errors.New("You cannot attach to a paused container, unpause it first")
			}
			cfg := *ct.Config
			cfg.AttachStdin = !noStdin && cfg.OpenStdin
			cfg.AttachStdout, cfg.AttachStderr = true, true
			t := newTerminal(cmd.OutOrStdout(), cmd.ErrOrStderr())
			return runAttached(ctx, c, t, ct.ID, &cfg, runAttach{sigProxy: sigProxy && !cfg.Tty, detachKeys: detachKeys})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	fl.BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	fl.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}
