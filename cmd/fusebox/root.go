package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fusebox/fusebox/client"
	"github.com/fusebox/fusebox/internal/formatter"
	"github.com/fusebox/fusebox/internal/rootflags"
)

// commands holds the constructors of the top-level commands by name. Each
// verb lives in a file of its own and adds itself here from an init
// function, so that adding a verb never means editing this file.
var commands = map[string]func() *cobra.Command{}

// register adds the constructor of the top-level command name; call it
// from init.
func register(name string, newCmd func() *cobra.Command) { commands[name] = newCmd }

// globals are the root flags every command shares.
var globals rootflags.Values

// newRootCmd builds the command tree for args. When args name a command,
// only that command is built: the tree of every verb and its flags took a
// tenth of the CLI's start-up, which every `run` pays. Help, completion
// and anything else unrecognised get the whole tree.
func newRootCmd(args []string) *cobra.Command {
	root := &cobra.Command{
		Use:           "fusebox [OPTIONS] COMMAND",
		Short:         "A container toolkit on a userspace union filesystem",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Global options come before the command, as with docker; they are
		// the root's own flags so that a command may reuse a letter
		// (history -H is --human).
		TraverseChildren: true,
	}
	globals.Add(root.Flags())
	// A bad flag is the CLI's own failure: Docker exits 125 for it, before
	// anything is sent to the daemon (and so before one is started).
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &statusError{code: 125, err: fmt.Errorf("%w\nSee '%s --help'", err, c.CommandPath())}
	})
	if newCmd, ok := commands[verb(args)]; ok {
		root.AddCommand(newCmd())
		return root
	}
	for _, name := range slices.Sorted(maps.Keys(commands)) {
		root.AddCommand(commands[name]())
	}
	return root
}

// verb is the command args name after the global options, or "" when
// that can't be told (a bad option, none given, help asked for).
func verb(args []string) string {
	fs := pflag.NewFlagSet("fusebox", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false)
	var g rootflags.Values
	g.Add(fs)
	help := fs.BoolP("help", "h", false, "")
	if fs.Parse(args) != nil || *help || fs.NArg() == 0 {
		return ""
	}
	return fs.Arg(0)
}

// dial connects to the daemon named by the root flags, starting it when
// nothing answers on its socket.
func dial(cmd *cobra.Command) (*client.Client, error) {
	return client.Connect(cmd.Context(), client.Options{Host: globals.Host, Root: globals.Root})
}

// dialFormatted checks a --format template before dialing, so that a bad
// template fails at once instead of after a daemon was started for it.
func dialFormatted(cmd *cobra.Command, format string) (*client.Client, error) {
	if format != "" {
		if _, err := formatter.Parse(format); err != nil {
			return nil, err
		}
	}
	return dial(cmd)
}

// run executes the CLI and returns the process exit status.
func run(args []string) int {
	root := newRootCmd(args)
	root.SetArgs(args)
	// Global flags let cobra stop at the root for a word it doesn't know
	// and print the root's help with status 0; say what docker says.
	root.InitDefaultHelpFlag()
	if c, rest, err := root.Traverse(args); err == nil && c == root {
		fl := root.Flags()
		if fl.Parse(rest) == nil && fl.NArg() > 0 {
			fmt.Fprintf(os.Stderr, "fusebox: unknown command: fusebox %s\nSee 'fusebox --help'\n", fl.Arg(0))
			return 1
		}
	}
	if err := root.Execute(); err != nil {
		var se *statusError
		if errors.As(err, &se) {
			if se.err != nil {
				fmt.Fprintln(os.Stderr, "fusebox:", se.err)
			}
			return se.code
		}
		fmt.Fprintln(os.Stderr, "fusebox:", err)
		return 1
	}
	return 0
}

// statusError ends the CLI with a given exit status, as Docker's verbs
// that report a container's own status (run, start -a, wait, exec) or
// their own failure (125) do; err, when set, is printed first.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e *statusError) Unwrap() error { return e.err }

// parseFilterFlags reads -f/--filter KEY=VALUE flags into the API's filters.
func parseFilterFlags(filters []string) (client.Filters, error) {
	f := client.Filters{}
	for _, kv := range filters {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		f.Add(k, v)
	}
	return f, nil
}

// listFilters reads a list verb's -f flags and checks its --format
// template ("table …" included) before anything is asked of the daemon;
// with -q the template is not used, so not checked.
func listFilters(filters []string, format string, quiet bool) (client.Filters, error) {
	if format != "" && !quiet {
		if _, err := formatter.Parse(strings.TrimPrefix(format, "table")); err != nil {
			return nil, err
		}
	}
	return parseFilterFlags(filters)
}
