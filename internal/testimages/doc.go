// Package testimages checks the images that package testdata builds for
// every other test. It lives outside testdata/ because `go test ./...` skips
// directories named testdata, and the fixtures deserve tests of their own: a
// fixture that is subtly wrong makes every test that uses it wrong. The
// checks use independent readers (skopeo, umoci, kernel overlayfs, plain
// archive/tar and sha256 here) rather than fusebox's own code.
package testimages
