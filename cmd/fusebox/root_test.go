package main

import "testing"

// TestRegisteredNames: each verb is registered under the name its command
// has, since a command line that names it builds that command alone.
func TestRegisteredNames(t *testing.T) {
	for name, newCmd := range commands {
		if got := newCmd().Name(); got != name {
			t.Errorf("registered as %q, the command is %q", name, got)
		}
	}
}

func TestVerb(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", "busybox", "true"}, "run"},
		{[]string{"-H", "unix:///tmp/s.sock", "ps", "-a"}, "ps"},
		{[]string{"--host=unix:///tmp/s.sock", "--root", "/tmp/r", "images"}, "images"},
		{[]string{"run", "--help"}, "run"},
		{[]string{"--help"}, ""},
		{[]string{"-h", "run"}, ""},
		{[]string{}, ""},
		{[]string{"--bogus", "ps"}, ""},
		{[]string{"-H"}, ""},
	} {
		if got := verb(c.args); got != c.want {
			t.Errorf("verb(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
