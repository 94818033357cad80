// Package image owns image references, configs and archive formats
// (docker-archive, OCI layouts).
package image
