// Package netspec owns the syntax of the network options a container is
// created with: -p/--publish and --expose (PortBinding, ExposedPort), the
// PORTS column and `port` lines they are shown as, --network (Mode) and
// --add-host (HostEntry), with Docker's error texts. It is a leaf: the CLI
// checks its flags with it before anything is sent, without linking the
// network package's CNI machinery, and the daemon's network package
// parses with the very same code (it re-exports these names).
package netspec
