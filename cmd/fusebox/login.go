package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	apiregistry "github.com/moby/moby/api/types/registry"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/image/imageref"
	"github.com/fusebox/fusebox/registry/auth"
)

func init() { register("login", newLoginCmd) }

// loadDockerConfig opens ~/.docker/config.json ($DOCKER_CONFIG honoured)
// with the docker CLI's own code, so both tools read and write the same
// credentials in the same format (auths → base64 "user:pass", or a
// credential helper when the file names one).
func loadDockerConfig() (*configfile.ConfigFile, error) {
	cf, err := dockerconfig.Load(dockerconfig.Dir())
	if err != nil {
		return nil, fmt.Errorf("read docker config: %w", err)
	}
	return cf, nil
}

// registryReference parses the NAME[:TAG|@DIGEST] of pull and push: with
// --all-tags it must be a bare repository, otherwise a missing tag means
// latest.
func registryReference(arg string, all bool) (imageref.Reference, error) {
	named, err := imageref.ParseNormalized(arg)
	if err != nil {
		return imageref.Reference{}, imageref.Invalid(arg, err)
	}
	if all && !named.NameOnly() {
		return imageref.Reference{}, errors.New("tag can't be used with --all-tags/-a")
	}
	if !all {
		named = named.WithDefaultTag()
	}
	return named, nil
}

// authHeader is the X-Registry-Auth value for ref's registry: the stored
// credentials, or an empty record when there are none.
func authHeader(ref imageref.Reference) (string, error) {
	return authHeaderFor(auth.ServerKey(ref.Domain))
}

// authHeaderFor is the X-Registry-Auth value for a config.json key.
func authHeaderFor(key string) (string, error) {
	cf, err := loadDockerConfig()
	if err != nil {
		return "", err
	}
	a, err := cf.GetAuthConfig(key)
	if err != nil {
		return "", fmt.Errorf("credentials for %s: %w", key, err)
	}
	return auth.EncodeHeader(apiregistry.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth, ServerAddress: key,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	})
}

func newLoginCmd() *cobra.Command {
	var (
		user, password string
		passwordStdin  bool
	)
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Long: "Authenticate to a registry. The daemon checks the credentials against the\n" +
			"registry (POST /auth); they are then stored in ~/.docker/config.json,\n" +
			"where the docker CLI finds them too. SERVER defaults to Docker Hub.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			key := auth.NormalizeServer(server)
			if password != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passwordStdin {
					return errors.New("--password and --password-stdin are mutually exclusive")
				}
			}
			if passwordStdin {
				if user == "" {
					return errors.New("must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			cf, err := loadDockerConfig()
			if err != nil {
				return err
			}
			if user == "" || password == "" {
				if err := prompt(cmd, cf, key, &user, &password); err != nil {
					return err
				}
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.RegistryLogin(cmd.Context(), client.RegistryLoginOptions{Username: user, Password: password, ServerAddress: key})
			if err != nil {
				return err
			}
			a := types.AuthConfig{Username: user, Password: password, ServerAddress: key}
			if res.Auth.IdentityToken != "" {
				a.Password, a.IdentityToken = "", res.Auth.IdentityToken
			}
			if err := cf.GetCredentialsStore(key).Store(a); err != nil {
				return fmt.Errorf("store credentials: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&user, "username", "u", "", "Username")
	fl.StringVarP(&password, "password", "p", "", "Password or Personal Access Token (PAT)")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

// prompt asks for what the flags did not give, on a terminal; elsewhere
// it is an error, as with Docker.
func prompt(cmd *cobra.Command, cf *configfile.ConfigFile, key string, user, password *string) error {
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return errors.New("cannot perform an interactive login from a non TTY device")
	}
	out := cmd.OutOrStdout()
	if *user == "" {
		def := ""
		if a, err := cf.GetAuthConfig(key); err == nil {
			def = a.Username
		}
		if def != "" {
			fmt.Fprintf(out, "Username (%s): ", def)
		} else {
			fmt.Fprint(out, "Username: ")
		}
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read username: %w", err)
		}
		*user = strings.TrimSpace(line)
		if *user == "" {
			*user = def
		}
		if *user == "" {
			return errors.New("username is required")
		}
	}
	if *password == "" {
		fmt.Fprint(out, "Password: ")
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		*password = string(b)
		if *password == "" {
			return errors.New("password is required")
		}
	}
	return nil
}
