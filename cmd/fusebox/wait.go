package main

import (
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
)

func init() { register("wait", newWaitCmd) }

func newWaitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			var failed bool
			for _, name := range args {
				w := c.ContainerWait(cmd.Context(), name, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
				select {
				case res := <-w.Result:
					fmt.Fprintln(cmd.OutOrStdout(), res.StatusCode)
				case err := <-w.Error:
					fmt.Fprintln(cmd.ErrOrStderr(), "Error response from daemon:", trimDaemonPrefix(err))
					failed = true
				}
			}
			if failed {
				return &statusError{code: 1}
			}
			return nil
		},
	}
}
