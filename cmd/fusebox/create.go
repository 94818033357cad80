package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("create", newCreateCmd) }

func newCreateCmd() *cobra.Command {
	var o containerOpts
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, hc, err := o.config(cmd.Flags(), args)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			c, err := dial(cmd)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			defer c.Close()
			id, err := createContainer(cmd.Context(), c, cmd.ErrOrStderr(), &o, cfg, hc)
			if err != nil {
				return &statusError{code: 125, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	o.addFlags(cmd.Flags())
	return cmd
}

// createContainer creates the container, pulling the image first when the
// daemon doesn't have it (as docker does), and writes --cidfile.
func createContainer(ctx context.Context, c *client.Client, stderr io.Writer, o *containerOpts, cfg *container.Config, hc *container.HostConfig) (string, error) {
	if o.cidfile != "" {
		if _, err := os.Stat(o.cidfile); err == nil {
			return "", fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", o.cidfile)
		}
	}
	opts := client.ContainerCreateOptions{Config: cfg, HostConfig: hc, NetworkingConfig: o.netCfg, Name: o.name}
	res, err := c.ContainerCreate(ctx, opts)
	if err != nil && cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "No such image") {
		ref := cfg.Image
		if !strings.Contains(ref, ":") && !strings.Contains(ref, "@") {
			ref += ":latest"
		}
		fmt.Fprintf(stderr, "Unable to find image '%s' locally\n", ref)
		pull, perr := c.ImagePull(ctx, cfg.Image, client.ImagePullOptions{})
		if perr != nil {
			return "", perr
		}
		if werr := pull.Wait(ctx); werr != nil {
			return "", werr
		}
		res, err = c.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "WARNING:", w)
	}
	if o.cidfile != "" {
		if err := os.WriteFile(o.cidfile, []byte(res.ID), 0o644); err != nil {
			return "", fmt.Errorf("write the container ID to the file: %w", err)
		}
	}
	return res.ID, nil
}

// startExitStatus is the exit status docker gives a failed start: 127 for
// a command that doesn't exist, 126 for one that can't be run, else 125.
func startExitStatus(err error) *statusError {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return &statusError{code: 127, err: err}
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return &statusError{code: 126, err: err}
	}
	return &statusError{code: 125, err: err}
}

// copyOutput copies a non-hijacked log or attach stream to the terminal.
func copyOutput(r io.Reader, tty bool, stdout, stderr io.Writer) error {
	var err error
	if tty {
		_, err = io.Copy(stdout, r)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, r)
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
