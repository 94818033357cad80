package main

import (
	"fmt"
	"path/filepath"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/fusebox/fusebox/api"
	"github.com/fusebox/fusebox/internal/formatter"
)

func init() { register("mount", newMountCmd) }

// mountRow is one line of `fusebox mount` without arguments.
type mountRow struct {
	Target, Image, ImageID, Mode, Created string
}

func newMountCmd() *cobra.Command {
	var rw, diff bool
	var format string
	cmd := &cobra.Command{
		Use:   "mount [OPTIONS] [IMAGE DIR | --diff DIR]",
		Short: "Mount an image on the host, list mounts, or list a writable mount's changes",
		Long: `Mount an image's file system at DIR on the host, served by the daemon until
'fusebox umount DIR' or until the daemon stops, so that ls, find, du and diff -r
work on it. With --rw the mount keeps a writable layer whose changes
'fusebox mount --diff DIR' lists like 'docker diff'. Without arguments,
list the mounts.`,
		Example: `  fusebox mount busybox /mnt/busybox
  fusebox mount --rw busybox /mnt/scratch
  fusebox mount --diff /mnt/scratch
  fusebox umount /mnt/busybox`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case diff && len(args) != 1:
				return fmt.Errorf("\"fusebox mount --diff\" requires exactly 1 argument: the mount point\nSee 'fusebox mount --help'")
			case !diff && len(args) != 0 && len(args) != 2:
				return fmt.Errorf("\"fusebox mount\" requires an image and a directory, or no argument to list mounts\nSee 'fusebox mount --help'")
			}
			c, err := dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			switch {
			case diff:
				dir, err := filepath.Abs(args[0])
				if err != nil {
					return err
				}
				changes, err := c.MountChanges(ctx, dir)
				if err != nil {
					return err
				}
				for _, ch := range changes {
					fmt.Fprintln(out, container.ChangeType(ch.Kind).String(), ch.Path)
				}
				return nil
			case len(args) == 2:
				dir, err := filepath.Abs(args[1])
				if err != nil {
					return err
				}
				_, err = c.Mount(ctx, api.MountRequest{Image: args[0], Target: dir, ReadWrite: rw})
				return err
			}
			mounts, err := c.Mounts(ctx)
			if err != nil {
				return err
			}
			rows := make([]any, 0, len(mounts))
			for _, m := range mounts {
				mode := "ro"
				if m.ReadWrite {
					mode = "rw"
				}
				name := m.Image
				if m.Container {
					name = "(container)"
				}
				rows = append(rows, mountRow{Target: m.Target, Image: name, ImageID: formatter.ShortID(m.ImageID), Mode: mode, Created: formatter.Ago(m.Created)})
			}
			return formatter.List{
				Format:       format,
				DefaultTable: "{{.Target}}\t{{.Image}}\t{{.ImageID}}\t{{.Mode}}\t{{.Created}}",
				Headers:      map[string]string{"Target": "MOUNTPOINT", "Image": "IMAGE", "ImageID": "IMAGE ID", "Mode": "MODE", "Created": "CREATED"},
			}.Write(out, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&rw, "rw", false, "Mount read-write: changes go to a writable layer kept until umount")
	fl.BoolVar(&diff, "diff", false, "List the changes of the writable mount at DIR (A added, C changed, D deleted)")
	fl.StringVar(&format, "format", "", "Format the mount list using a Go template")
	return cmd
}
