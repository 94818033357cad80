// Package api is what a fusebox client and daemon agree on beyond the
// Docker Engine API they speak: the API version, where a daemon listens
// and keeps its state by default, fusebox's version, and the bodies of
// fusebox's own endpoints (image mounts on the host, /fusebox/mounts).
//
// It imports nothing of the daemon's, so that the CLI, which links it,
// stays a small binary that starts fast (every command is a process).
package api

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// API versions the daemon speaks.
const (
	APIVersion    = "1.44"
	MinAPIVersion = "1.24"
)

// Defaults for a system-wide daemon.
const (
	DefaultRoot = "/var/lib/fusebox"
	DefaultHost = "unix:///run/fusebox/fusebox.sock"
)

// PathStatHeader carries, base64 JSON, the stat of a container path in
// the daemon's answers to HEAD and GET /containers/{id}/archive.
const PathStatHeader = "X-Docker-Container-Path-Stat"

// LogName is the daemon's log file in its root.
const LogName = "daemon.log"

// Version is fusebox's own version, shown by `version` and /version.
var Version = "0.1.0-dev"

// SocketPath returns the unix socket path of a DOCKER_HOST-style address;
// empty is DefaultHost.
func SocketPath(host string) (string, error) {
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" || u.Path == "" {
		return "", fmt.Errorf("invalid host %q: want unix:///path/to/socket", host)
	}
	return u.Path, nil
}

// MountRequest is the body of POST /fusebox/mounts.
type MountRequest struct {
	// Image is the image as the user names it (busybox, an ID prefix).
	Image string
	// Target is the mount point, an absolute path on the daemon's host.
	Target string
	// ReadWrite keeps a writable layer in the daemon's root for the life
	// of the mount; its changes are listed by GET /fusebox/mounts/changes.
	ReadWrite bool
}

// MountInfo describes a mount (GET /fusebox/mounts, POST's answer).
type MountInfo struct {
	Target string
	// Image is the name the mount was asked for; ImageID the image.
	Image     string
	ImageID   string
	ReadWrite bool
	// Upper is the writable layer's directory, empty when read-only.
	Upper   string
	Created time.Time
	// Container is false for a mount made with `fusebox mount`, true for
	// one the daemon made for a container (umount refuses those).
	Container bool
}

// MountChange is one line of GET /fusebox/mounts/changes, as in Docker's
// container changes: Kind 0 changed, 1 added, 2 deleted.
type MountChange struct {
	Path string
	Kind uint8
}

// CutSecurityOpt splits a `--security-opt` value into its key and value as
// Docker reads it, KEY=VALUE or the older KEY:VALUE; ok is false for one
// with neither (no-new-privileges alone).
func CutSecurityOpt(opt string) (key, val string, ok bool) {
	if key, val, ok = strings.Cut(opt, "="); ok {
		return key, val, ok
	}
	return strings.Cut(opt, ":")
}
