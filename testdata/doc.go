// Package testdata builds the images that fusebox's tests use, from
// Debian's packages, deterministically, and caches them.
package testdata
