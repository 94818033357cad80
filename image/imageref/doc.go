// Package imageref reads Docker image references ("busybox",
// "example.com:5000/app:v1", "repo@sha256:…") without regular
// expressions, for the CLI, whose every start-up would otherwise pay for
// compiling distribution/reference's patterns. It accepts exactly the
// grammar of github.com/distribution/reference and fails with the same
// error texts (a test compares both on many inputs), so that the CLI's
// messages do not change and the daemon, which parses with the image
// package, agrees with it on which names are valid: a reference is
// [domain[:port]/]path[:tag][@digest], a domain is dot-separated host
// labels or a bracketed IPv6 address, a path is slash-separated lowercase
// components joined by ".", "_", "__" or runs of "-", a tag is up to 128
// word characters, dots and dashes, not starting with either.
//
// Normalising is Docker's: a name without a registry is on docker.io, an
// official one-component name is under library/, and "latest" is the tag
// a name without tag or digest stands for (WithDefaultTag). The familiar
// form drops what normalising added.
package imageref
