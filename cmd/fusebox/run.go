package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/detachkeys"
)

func init() { register("run", newRunCmd) }

func newRunCmd() *cobra.Command {
	var (
		o                    containerOpts
		detach, rm, sigProxy bool
		detachKeys           string
	)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, hc, err := o.config(cmd.Flags(), args)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			hc.AutoRemove = rm
			streams, err := attachStreams(o.attach, o.interactive, detach)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = streams[0], streams[1], streams[2]
			if cfg.AttachStdin {
				cfg.StdinOnce = true
			}
			t := newTerminal(cmd.OutOrStdout(), cmd.ErrOrStderr())
			if o.tty && cfg.AttachStdin && !t.inTerm {
				return &statusError{code: 1, err: errors.New("the input device is not a TTY")}
			}
			if o.tty {
				h, w := t.size()
				hc.ConsoleSize = [2]uint{h, w}
			}
			c, err := dial(cmd)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			defer c.Close()
			ctx := cmd.Context()
			id, err := createContainer(ctx, c, cmd.ErrOrStderr(), &o, cfg, hc)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			if detach {
				if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
					return startExitStatus(err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			}
			return runAttached(ctx, c, t, id, cfg, runAttach{rm: rm, sigProxy: sigProxy && !o.tty, detachKeys: detachKeys, start: true})
		},
	}
	cmd.Flags().SetInterspersed(false)
	o.addFlags(cmd.Flags())
	fl := cmd.Flags()
	fl.BoolVarP(&detach, "detach", "d", false, "Run container in background and print container ID")
	fl.BoolVar(&rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fl.BoolVar(&sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fl.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// attachStreams decides which of stdin, stdout and stderr `run` attaches:
// those of -a, else stdout and stderr (and stdin with -i) unless detached.
func attachStreams(attach []string, interactive, detach bool) ([3]bool, error) {
	var s [3]bool
	if detach {
		if len(attach) > 0 {
			return s, errors.New("conflicting options: cannot specify both --attach and --detach")
		}
		return s, nil
	}
	if len(attach) == 0 {
		return [3]bool{interactive, true, true}, nil
	}
	for _, a := range attach {
		switch strings.ToLower(a) {
		case "stdin":
			s[0] = true
		case "stdout":
			s[1] = true
		case "stderr":
			s[2] = true
		default:
			return s, fmt.Errorf("invalid argument %q for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR", a)
		}
	}
	return s, nil
}

// runAttach says how runAttached behaves for run, start -a and attach.
type runAttach struct {
	rm, sigProxy bool
	detachKeys   string
	// start starts the container after attaching (run, start -a).
	start bool
}

// runAttached attaches to a container (before starting it, when asked),
// streams until its output ends, and returns its exit status as the
// CLI's, as `docker run` does.
func runAttached(ctx context.Context, c *client.Client, t *terminal, id string, cfg *container.Config, how runAttach) error {
	cond := container.WaitConditionNextExit
	if how.rm {
		cond = container.WaitConditionRemoved
	}
	if !how.start {
		cond = container.WaitConditionNotRunning
	}
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	// The wait and the attach are both made before the start, so that
	// neither the exit nor the first output can be missed; made side by
	// side, they cost one round trip to the daemon rather than two.
	var wait client.ContainerWaitResult
	waiting := make(chan struct{})
	go func() {
		defer close(waiting)
		wait = c.ContainerWait(waitCtx, id, client.ContainerWaitOptions{Condition: cond})
	}()

	var resp *client.HijackedResponse
	if cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr {
		r, err := c.ContainerAttach(ctx, id, client.ContainerAttachOptions{
			Stream: true, Stdin: cfg.AttachStdin, Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr,
			DetachKeys: how.detachKeys,
		})
		if err != nil {
			return &statusError{code: 125, err: err}
		}
		resp = &r.HijackedResponse
		defer resp.Close()
	}
	<-waiting
	restore := func() {}
	if cfg.Tty && cfg.AttachStdin {
		restore = t.raw()
	}
	defer restore()
	if how.start {
		if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			restore()
			if how.rm {
				// Docker removes an --rm container whose start failed.
				_, _ = c.ContainerRemove(context.WithoutCancel(ctx), id, client.ContainerRemoveOptions{Force: true})
			}
			return startExitStatus(err)
		}
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	if cfg.Tty {
		t.watchResize(sctx, func(h, w uint) {
			_, _ = c.ContainerResize(sctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		})
	}
	if how.sigProxy {
		proxySignals(sctx, c, id)
	}
	if resp != nil {
		var stdin io.Reader
		if cfg.AttachStdin {
			stdin = t.in
		}
		var stdout, stderr io.Writer
		if cfg.AttachStdout {
			stdout = t.out
		} else {
			stdout = io.Discard
		}
		if cfg.AttachStderr {
			stderr = t.errOut
		} else {
			stderr = io.Discard
		}
		err := pump(resp, cfg.Tty, stdin, stdout, stderr, how.detachKeys)
		if errors.Is(err, detachkeys.ErrDetached) {
			restore()
			return nil
		}
		if err != nil {
			return &statusError{code: 125, err: err}
		}
	}
	select {
	case res := <-wait.Result:
		if res.Error != nil && res.Error.Message != "" {
			return &statusError{code: 125, err: errors.New(res.Error.Message)}
		}
		if res.StatusCode != 0 {
			return &statusError{code: int(res.StatusCode)}
		}
		return nil
	case err := <-wait.Error:
		return &statusError{code: 125, err: err}
	}
}
