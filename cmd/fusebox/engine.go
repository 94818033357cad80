package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// EngineBinary is the binary that runs the daemon and the bench harness,
// installed next to fusebox.
const EngineBinary = "fuseboxd"

func init() {
	register("daemon", engineCmd("daemon", "Run the fusebox daemon in the foreground"))
	register("bench", engineCmd("bench", "Measure layer I/O side by side with kernel overlayfs and fuse-overlayfs"))
}

// engineCmd is a verb the engine binary runs: the CLI replaces itself with
// `fuseboxd --root R -H H VERB ARGS...`, so the daemon keeps this
// process's ID, session and signals, and its flags and help are its own.
func engineCmd(verb, short string) func() *cobra.Command {
	return func() *cobra.Command {
		return &cobra.Command{
			Use:                verb + " [OPTIONS]",
			Short:              short,
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				exe, err := engineBinary()
				if err != nil {
					return err
				}
				argv := append(append(append([]string{exe}, globals.Args()...), verb), args...)
				return syscall.Exec(exe, argv, os.Environ())
			},
		}
	}
}

// engineBinary is fuseboxd next to the running fusebox, else on PATH.
func engineBinary() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), EngineBinary)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	p, err := exec.LookPath(EngineBinary)
	if err != nil {
		return "", fmt.Errorf("%s is not installed next to fusebox nor on PATH (make build installs it in bin/)", EngineBinary)
	}
	return p, nil
}
