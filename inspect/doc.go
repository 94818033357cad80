// Package inspect holds read-only views of images: mounts on the host,
// history, sizes, what-is-where.
package inspect
