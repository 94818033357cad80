// Package daemon is the fusebox daemon: it owns the store, serves the Docker
// Engine API on a unix socket, serves every FUSE mount and supervises every
// container.
package daemon
