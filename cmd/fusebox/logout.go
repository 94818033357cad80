package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/registry/auth"
)

func init() { register("logout", newLogoutCmd) }

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "Remove the credentials of SERVER (default Docker Hub) from ~/.docker/config.json.",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			key := auth.NormalizeServer(server)
			cf, err := loadDockerConfig()
			if err != nil {
				return err
			}
			if _, ok := cf.GetAuthConfigs()[key]; !ok {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", key)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", key)
			if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
				return fmt.Errorf("could not erase credentials for %s: %w", key, err)
			}
			return nil
		},
	}
}
