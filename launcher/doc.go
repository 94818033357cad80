// Package launcher runs a container from a mounted rootfs: the shim process
// that embeds libcontainer, holds the container's stdio, writes its log,
// relays signals and reports its exit code.
package launcher
