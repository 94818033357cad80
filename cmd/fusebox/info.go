package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/api"
	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("info", newInfoCmd) }

func newInfoCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialFormatted(cmd, format)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Info(cmd.Context(), client.InfoOptions{})
			if err != nil {
				return err
			}
			if format != "" {
				return formatter.Execute(cmd.OutOrStdout(), format, res.Info)
			}
			printInfo(cmd.OutOrStdout(), c.ClientVersion(), res.Info)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template ('json' or a Go template)")
	return cmd
}

// printInfo follows the layout of `docker info`.
func printInfo(w io.Writer, apiVersion string, i system.Info) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("Client:")
	p(" Version:    %s", api.Version)
	p(" API version: %s", apiVersion)
	p(" Go version: %s", runtime.Version())
	p("")
	p("Server:")
	p(" Containers: %d", i.Containers)
	p("  Running: %d", i.ContainersRunning)
	p("  Paused: %d", i.ContainersPaused)
	p("  Stopped: %d", i.ContainersStopped)
	p(" Images: %d", i.Images)
	p(" Server Version: %s", i.ServerVersion)
	p(" Storage Driver: %s", i.Driver)
	for _, kv := range i.DriverStatus {
		p("  %s: %s", kv[0], kv[1])
	}
	p(" Logging Driver: %s", i.LoggingDriver)
	p(" Cgroup Driver: %s", i.CgroupDriver)
	p(" Cgroup Version: %s", i.CgroupVersion)
	p(" Default Runtime: %s", i.DefaultRuntime)
	if len(i.SecurityOptions) > 0 {
		// Each is name=NAME[,KEY=VALUE...]; docker info shows the name,
		// then each key capitalised.
		p(" Security Options:")
		for _, opt := range i.SecurityOptions {
			for _, kv := range strings.Split(opt, ",") {
				k, v, _ := strings.Cut(kv, "=")
				if k == "name" {
					p("  %s", v)
				} else if k != "" {
					p("   %s: %s", strings.ToUpper(k[:1])+k[1:], v)
				}
			}
		}
	}
	p(" Kernel Version: %s", i.KernelVersion)
	p(" Operating System: %s", i.OperatingSystem)
	p(" OSType: %s", i.OSType)
	p(" Architecture: %s", i.Architecture)
	p(" CPUs: %d", i.NCPU)
	p(" Total Memory: %s", humanMem(i.MemTotal))
	p(" Name: %s", i.Name)
	p(" Docker Root Dir: %s", i.DockerRootDir)
	p(" Debug Mode: %v", i.Debug)
	p(" Experimental: %v", i.ExperimentalBuild)
	for _, warn := range i.Warnings {
		p("%s", warn)
	}
}

// humanMem shows memory in binary units, as docker info does ("23.47GiB").
func humanMem(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	u := 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	return fmt.Sprintf("%.4g%s", f, units[u])
}
