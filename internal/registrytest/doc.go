// Package registrytest runs real registries for tests: Debian's
// docker-registry (CNCF distribution) on 127.0.0.1 with a config file of
// its own, filesystem storage in a temp dir, optionally htpasswd auth; it
// seeds them with skopeo (never with fusebox, so that a bug shared by
// fusebox's pull and push cannot hide), and it puts small reverse proxies
// in front of them that corrupt or stall blob downloads. Everything it
// starts is stopped by t.Cleanup.
package registrytest
