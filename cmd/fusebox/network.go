package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	apinet "github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("network", newNetworkCmd) }

// newNetworkCmd is the `network` group: ls, create, rm, inspect, connect,
// disconnect, prune, as in Docker.
func newNetworkCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network COMMAND",
		Short: "Manage networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newNetworkLsCmd(), newNetworkCreateCmd(), newNetworkRmCmd(), newObjectInspectCmd("NETWORK", "networks", func(ctx context.Context, c *client.Client, name string) (json.RawMessage, error) {
		res, err := c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		return res.Raw, err
	}),
		newNetworkConnectCmd(), newNetworkDisconnectCmd(), newPruneCmd(networkPrune))
	return cmd
}

// networkRow is one line of `network ls`; --format templates name its
// fields.
type networkRow struct {
	ID, Name, Driver, Scope, IPv4, IPv6, Internal, CreatedAt, Labels string
}

func newNetworkLsCmd() *cobra.Command {
	var (
		quiet, noTrunc bool
		format         string
		filters        []string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := listFilters(filters, format, quiet)
			if err != nil {
				return err
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: f})
			if err != nil {
				return err
			}
			var rows []any
			for _, n := range res.Items {
				id := n.ID
				if !noTrunc {
					id = formatter.ShortID(id)
				}
				var labels []string
				for k, v := range n.Labels {
					labels = append(labels, k+"="+v)
				}
				rows = append(rows, networkRow{
					ID: id, Name: n.Name, Driver: n.Driver, Scope: n.Scope,
					IPv4: fmt.Sprint(n.EnableIPv4), IPv6: fmt.Sprint(n.EnableIPv6), Internal: fmt.Sprint(n.Internal),
					CreatedAt: n.Created.Format("2006-01-02 15:04:05.999999999 -0700 MST"), Labels: strings.Join(labels, ","),
				})
			}
			return formatter.List{
				Format:       format,
				DefaultTable: "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
				Headers: map[string]string{
					"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
					"IPv6": "IPV6", "Internal": "INTERNAL", "CreatedAt": "CREATED AT", "Labels": "LABELS",
				},
				Quiet:      quiet,
				QuietField: "ID",
			}.Write(cmd.OutOrStdout(), rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	listVarP(fl, &filters, "filter", "f", "Provide filter values (e.g. 'driver=bridge')")
	return cmd
}

func newNetworkCreateCmd() *cobra.Command {
	var (
		driver, subnet, gateway string
		internal                bool
		labels, opts            []string
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.NetworkCreateOptions{Driver: driver, Internal: internal, Labels: map[string]string{}, Options: map[string]string{}}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				o.Labels[k] = v
			}
			for _, l := range opts {
				k, v, _ := strings.Cut(l, "=")
				o.Options[k] = v
			}
			if subnet != "" || gateway != "" {
				var cfg apinet.IPAMConfig
				if subnet != "" {
					p, err := netip.ParsePrefix(subnet)
					if err != nil {
						return fmt.Errorf("invalid subnet %s: %w", subnet, err)
					}
					cfg.Subnet = p
				}
				if gateway != "" {
					if subnet == "" {
						return errors.New("every ip-range or gateway must have a corresponding subnet")
					}
					a, err := netip.ParseAddr(gateway)
					if err != nil {
						return fmt.Errorf("invalid gateway %s: %w", gateway, err)
					}
					cfg.Gateway = a
				}
				o.IPAM = &apinet.IPAM{Driver: "default", Config: []apinet.IPAMConfig{cfg}}
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.NetworkCreate(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	fl.StringVar(&subnet, "subnet", "", "Subnet in CIDR format that represents a network segment")
	fl.StringVar(&gateway, "gateway", "", "IPv4 Gateway for the master subnet")
	fl.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	listVarP(fl, &labels, "label", "", "Set metadata on a network")
	listVarP(fl, &opts, "opt", "o", "Set driver specific options")
	return cmd
}

func newNetworkRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return forEach(cmd, args, func(name string) error {
				_, err := c.NetworkRemove(cmd.Context(), name, client.NetworkRemoveOptions{})
				return err
			})
		},
	}
}

func newNetworkConnectCmd() *cobra.Command {
	var (
		ip, mac string
		aliases []string
	)
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ep := &apinet.EndpointSettings{Aliases: aliases}
			if ip != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil || !a.Is4() {
					return fmt.Errorf("invalid IPv4 address: %s", ip)
				}
				ep.IPAMConfig = &apinet.EndpointIPAMConfig{IPv4Address: a}
			}
			if mac != "" {
				hw, err := parseHardwareAddr(mac)
				if err != nil {
					return err
				}
				ep.MacAddress = hw
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: ep})
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fl.StringVar(&mac, "mac-address", "", "MAC address")
	listVarP(fl, &aliases, "alias", "", "Add network-scoped alias for the container")
	return cmd
}

func newNetworkDisconnectCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
