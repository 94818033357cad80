package main

import (
	"runtime"
	"text/template"

	"github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/api"
	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("version", newVersionCmd) }

// versionTemplate follows the layout of `docker version`.
const versionTemplate = `Client:
 Version:           {{.Client.Version}}
 API version:       {{.Client.APIVersion}}
 Go version:        {{.Client.GoVersion}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
{{- if .Server}}

Server: {{.Server.Platform.Name}}
{{- range $c := .Server.Components}}
 {{$c.Name}}:
  Version:          {{$c.Version}}
  {{- if eq $c.Name "Engine"}}
  API version:      {{index $c.Details "ApiVersion"}} (minimum version {{index $c.Details "MinAPIVersion"}})
  Go version:       {{index $c.Details "GoVersion"}}
  OS/Arch:          {{index $c.Details "Os"}}/{{index $c.Details "Arch"}}
  Kernel version:   {{index $c.Details "KernelVersion"}}
  Experimental:     {{index $c.Details "Experimental"}}
  {{- end}}
{{- end}}
{{- end}}
`

type clientVersion struct {
	Version    string
	APIVersion string
	GoVersion  string
	Os         string
	Arch       string
}

type versionInfo struct {
	Client clientVersion
	Server *system.VersionResponse
}

func newVersionCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the fusebox version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialFormatted(cmd, format)
			if err != nil {
				return err
			}
			defer c.Close()
			sv, err := c.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
			if err != nil {
				return err
			}
			v := versionInfo{
				Client: clientVersion{
					Version:    api.Version,
					APIVersion: c.ClientVersion(),
					GoVersion:  runtime.Version(),
					Os:         runtime.GOOS,
					Arch:       runtime.GOARCH,
				},
				Server: &system.VersionResponse{
					Platform:      system.PlatformInfo{Name: sv.Platform.Name},
					Version:       sv.Version,
					APIVersion:    sv.APIVersion,
					MinAPIVersion: sv.MinAPIVersion,
					Os:            sv.Os,
					Arch:          sv.Arch,
					Components:    sv.Components,
				},
			}
			for _, comp := range sv.Components {
				if comp.Name == "Engine" {
					v.Server.GoVersion = comp.Details["GoVersion"]
					v.Server.KernelVersion = comp.Details["KernelVersion"]
				}
			}
			if format != "" {
				return formatter.Execute(cmd.OutOrStdout(), format, v)
			}
			t := template.Must(template.New("version").Funcs(formatter.Funcs).Parse(versionTemplate))
			return t.Execute(cmd.OutOrStdout(), v)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template ('json' or a Go template)")
	return cmd
}
