package main

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/detachkeys"
)

func init() { register("exec", newExecCmd) }

func newExecCmd() *cobra.Command {
	var (
		interactive, tty, detach, privileged bool
		user, workdir, detachKeys            string
		env, envFile                         []string
	)
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, err := readEnv(envFile, env)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			t := newTerminal(cmd.OutOrStdout(), cmd.ErrOrStderr())
			if tty && interactive && !t.inTerm {
				return &statusError{code: 1, err: errors.New("the input device is not a TTY")}
			}
			c, err := dial(cmd)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			defer c.Close()
			ctx := cmd.Context()
			opts := client.ExecCreateOptions{
				User: user, Privileged: privileged, TTY: tty, AttachStdin: interactive && !detach,
				AttachStdout: !detach, AttachStderr: !detach, DetachKeys: detachKeys,
				Env: vars, WorkingDir: workdir, Cmd: args[1:],
			}
			if tty {
				h, w := t.size()
				opts.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
			}
			ex, err := c.ExecCreate(ctx, args[0], opts)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			if detach {
				if _, err := c.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true, TTY: tty}); err != nil {
					return &statusError{code: 125, err: err}
				}
				return nil
			}
			att, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: tty, ConsoleSize: opts.ConsoleSize})
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			defer att.Close()
			restore := func() {}
			if tty && interactive {
				restore = t.raw()
			}
			sctx, stop := context.WithCancel(ctx)
			if tty {
				t.watchResize(sctx, func(h, w uint) {
					_, _ = c.ExecResize(sctx, ex.ID, client.ExecResizeOptions{Height: h, Width: w})
				})
			}
			var stdin io.Reader
			if interactive {
				stdin = t.in
			}
			err = pump(&att.HijackedResponse, tty, stdin, t.out, t.errOut, detachKeys)
			stop()
			restore()
			if errors.Is(err, detachkeys.ErrDetached) {
				return nil
			}
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			res, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			if res.ExitCode != 0 {
				return &statusError{code: res.ExitCode}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	fl := cmd.Flags()
	fl.BoolVarP(&interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVarP(&tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.BoolVarP(&detach, "detach", "d", false, "Detached mode: run command in the background")
	fl.BoolVar(&privileged, "privileged", false, "Give extended privileges to the command")
	fl.StringVarP(&user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fl.StringVarP(&workdir, "workdir", "w", "", "Working directory inside the container")
	fl.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	listVarP(fl, &env, "env", "e", "Set environment variables")
	listVarP(fl, &envFile, "env-file", "", "Read in a file of environment variables")
	return cmd
}
