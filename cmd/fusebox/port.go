package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/network/netspec"
)

func init() { register("port", newPortCmd) }

// newPortCmd is `port CONTAINER [PRIVATE_PORT[/PROTO]]`: it reads the
// published ports from inspect's NetworkSettings.Ports, as docker does.
func newPortCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var bindings []netspec.PortBinding
			if ns := res.Container.NetworkSettings; ns != nil {
				for p, bs := range ns.Ports {
					for _, b := range bs {
						hp, _ := strconv.Atoi(b.HostPort)
						ip := ""
						if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
							ip = b.HostIP.String()
						}
						bindings = append(bindings, netspec.PortBinding{HostIP: ip, HostPort: uint16(hp), ContainerPort: p.Num(), Proto: string(p.Proto())})
					}
				}
			}
			filter := ""
			if len(args) == 2 {
				filter = args[1]
			}
			lines, err := netspec.PortLines(bindings, filter)
			if errors.Is(err, netspec.ErrNoPublicPort) {
				if !strings.Contains(filter, "/") {
					filter += "/tcp"
				}
				return fmt.Errorf("no public port '%s' published for %s", filter, args[0])
			}
			if err != nil {
				return err
			}
			for _, l := range lines {
				fmt.Fprintln(cmd.OutOrStdout(), l)
			}
			return nil
		},
	}
}
