// Command fusebox-overlay is a drop-in for fuse-overlayfs, served by
// fusebox's layerfs over plain directories. It touches no store.
//
//	fusebox-overlay [-f] [-d] [-o lowerdir=A:B,upperdir=U,workdir=W] MNT
//
// lowerdir lists the lower layers top first (leftmost is the top one, as
// with overlayfs); without upperdir and workdir the mount is read-only.
// Options fuse-overlayfs knows but fusebox-overlay does not implement, and
// unknown options, are ignored with a warning on stderr, as fuse-overlayfs
// does. Like fuse-overlayfs it goes to the background once the file system
// is mounted, unless -f or -d is given.
//
// To use it as `mount -t fuse.fusebox-overlay none MNT -o lowerdir=...`
// (mount.fuse3 runs "fusebox-overlay none MNT -o OPTS"), install the binary
// as fusebox-overlay in a directory of PATH, e.g.
//
//	install -m 0755 bin/fusebox-overlay /usr/local/bin/
//
// For podman, set mount_program = "/usr/local/bin/fusebox-overlay" in
// storage.conf. Unmount with `umount MNT` or `fusermount3 -u MNT`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/fusebox/fusebox/layerfs"
)

const version = "0.1"

// daemonEnv marks the background child of a daemonizing fusebox-overlay;
// its value is the number of the pipe on which it reports the mount.
const daemonEnv = "_FUSEBOX_OVERLAY_DAEMON"

// config is the parsed command line.
type config struct {
	lowers            []string
	upper, work       string
	mountpoint        string
	foreground, debug bool
	readOnly          bool
	extra             []string // mount options passed on (nosuid, ...)
}

// passOn are the mount options handed to the kernel as they are.
var passOn = map[string]bool{"nosuid": true, "nodev": true, "noexec": true, "suid": true, "dev": true, "exec": true}

// silent are options that need nothing from fusebox-overlay: layerfs
// always behaves so, or they only tune fuse-overlayfs's own machinery.
var silent = map[string]bool{
	"rw": true, "allow_other": true, "allow_root": true, "default_permissions": true,
	"atime": true, "noatime": true, "relatime": true, "strictatime": true, "nodiratime": true,
	"lazytime": true, "nolazytime": true, "auto_unmount": true, "clone_fd": true,
	"max_idle_threads": true, "max_threads": true, "threaded": true, "fsync": true,
	"fast_ino": true, "writeback": true, "timeout": true, "noacl": true, "volatile": true,
	"xattr_permissions": true, "context": true, "debug": true, "ro": true, "_netdev": true,
	"user": true, "nouser": true, "users": true, "auto": true, "noauto": true, "nofail": true,
}

func parseArgs(args []string, warn io.Writer) (config, error) {
	var c config
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f":
			c.foreground = true
		case a == "-d" || a == "--debug":
			c.debug, c.foreground = true, true
		case a == "-s":
		case a == "-o":
			if i+1 >= len(args) {
				return c, errors.New("option -o needs an argument")
			}
			i++
			if err := c.parseOpts(args[i], warn); err != nil {
				return c, err
			}
		case strings.HasPrefix(a, "-o"):
			if err := c.parseOpts(a[2:], warn); err != nil {
				return c, err
			}
		case strings.HasPrefix(a, "-") && a != "-":
			fmt.Fprintf(warn, "unknown argument ignored: %s\n", a)
		default:
			pos = append(pos, a)
		}
	}
	switch len(pos) {
	case 1:
		c.mountpoint = pos[0]
	case 2: // mount.fuse3 passes the source ("none") first
		c.mountpoint = pos[1]
	default:
		return c, errors.New("usage: fusebox-overlay [-f] [-d] -o lowerdir=A:B[,upperdir=U,workdir=W] MOUNTPOINT")
	}
	if len(c.lowers) == 0 {
		return c, errors.New("no lowerdir specified")
	}
	if (c.upper == "") != (c.work == "") {
		return c, errors.New("upperdir and workdir must be given together")
	}
	if c.readOnly {
		c.upper, c.work = "", ""
	}
	return c, nil
}

func (c *config) parseOpts(s string, warn io.Writer) error {
	for _, o := range splitOpts(s) {
		key, val, _ := strings.Cut(o, "=")
		switch key {
		case "":
		case "lowerdir":
			for _, d := range strings.Split(val, ":") {
				if d != "" {
					c.lowers = append(c.lowers, d)
				}
			}
		case "upperdir":
			c.upper = val
		case "workdir":
			c.work = val
		case "ro":
			c.readOnly = true
		case "debug":
			c.debug = true
		case "uidmapping", "gidmapping", "squash_to_root", "squash_to_uid", "squash_to_gid",
			"static_nlink", "noxattrs", "plugins":
			fmt.Fprintf(warn, "fusebox-overlay: option %s is not supported, ignored\n", key)
		default:
			switch {
			case passOn[key]:
				c.extra = append(c.extra, key)
			case silent[key]:
			default:
				fmt.Fprintf(warn, "unknown argument ignored: %s\n", o)
			}
		}
	}
	return nil
}

// splitOpts splits a comma-separated option list; a backslash escapes a
// comma (paths may hold commas).
func splitOpts(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help") {
		fmt.Println("usage: fusebox-overlay [-f] [-d] -o lowerdir=A:B[,upperdir=U,workdir=W] MOUNTPOINT")
		return
	}
	if len(os.Args) > 1 && (os.Args[1] == "-V" || os.Args[1] == "--version") {
		fmt.Println("fusebox-overlay: version " + version)
		return
	}
	c, err := parseArgs(os.Args[1:], os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fusebox-overlay: %v\n", err)
		os.Exit(1)
	}
	if !c.foreground && os.Getenv(daemonEnv) == "" {
		os.Exit(daemonize())
	}
	if err := serve(c); err != nil {
		fmt.Fprintf(os.Stderr, "fusebox-overlay: %v\n", err)
		os.Exit(1)
	}
}

// daemonize starts this program again in the background (a Go program
// cannot fork) and waits for it to report the mount over a pipe, so that,
// as with fuse-overlayfs, the file system is ready when the command
// returns. It runs before anything is mounted: a process that serves a
// FUSE mount must never start a child that could touch the mount.
func daemonize() int {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fusebox-overlay: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fusebox-overlay: %v\n", err)
		return 1
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fusebox-overlay: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "fusebox-overlay: start background process: %v\n", err)
		return 1
	}
	w.Close()
	msg, _ := io.ReadAll(r)
	if string(msg) != "ok" {
		if len(msg) == 0 {
			msg = []byte("background process exited before mounting")
		}
		fmt.Fprintf(os.Stderr, "fusebox-overlay: %s\n", msg)
		return 1
	}
	return 0
}

func serve(c config) error {
	var report *os.File
	if os.Getenv(daemonEnv) != "" {
		report = os.NewFile(3, "report")
		os.Unsetenv(daemonEnv)
	}
	fail := func(err error) error {
		if report != nil {
			fmt.Fprint(report, err)
			report.Close()
		}
		return err
	}
	var srcs []layerfs.Source
	for _, d := range c.lowers {
		s, err := layerfs.NewDirSource(d)
		if err != nil {
			return fail(err)
		}
		srcs = append(srcs, s)
	}
	opts := layerfs.MountOptions{
		Lowers: srcs, UpperDir: c.upper, WorkDir: c.work,
		FsName: "fusebox-overlay", Name: "fusebox-overlay",
		ExtraOptions: c.extra,
	}
	if c.debug {
		opts.Debug = true
		opts.Logger = log.New(os.Stderr, "", log.LstdFlags)
	}
	procs := runtime.GOMAXPROCS(0)
	srv, err := layerfs.Mount(context.Background(), c.mountpoint, opts)
	if err != nil {
		return fail(err)
	}
	// Only now: go-fuse sizes its pool of readers by GOMAXPROCS when the
	// server starts.
	runtime.GOMAXPROCS(servingProcs(procs))
	if report != nil {
		fmt.Fprint(report, "ok")
		report.Close()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		srv.Unmount()
	}()
	srv.Wait()
	return srv.Unmount()
}

// servingProcs is the GOMAXPROCS the process serves the mount with, given
// the one go-fuse sized its readers by. go-fuse keeps up to
// max(2, min(procs, 16))+1 goroutines waiting for requests in read(2), and
// a goroutine blocked in a system call keeps its P. With the default
// GOMAXPROCS (the CPU count) the readers hold every P, so the runtime's
// monitor takes a P back from a reader whenever a read lasts over 20 µs
// (wakes a thread to run it, which finds nothing to do and sleeps) and
// keeps polling every 20 µs instead of backing off to 10 ms. On a
// two-CPU machine that was a third of the context switches of a small
// create. One P more than the readers leaves the monitor nothing to take;
// the number of readers, and so of requests served at once, is unchanged.
func servingProcs(procs int) int {
	readers := min(max(procs, 2), 16) + 1
	return max(procs, readers+1)
}
