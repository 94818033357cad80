// Package client is the CLI's side of the daemon's API.
package client
