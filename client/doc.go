// Package client is the CLI's side of the daemon's API: a small Docker
// Engine API client over the daemon's unix socket, plus the one thing
// Docker's client never does, starting the daemon.
//
// The client is written for the CLI's start-up time: every command is a
// process, and the official client (github.com/moby/moby/client) costs
// each one about ten milliseconds of package initialisation and page
// faults (OpenTelemetry, reference regexps) before main runs. So one core
// (request.go) builds a request, with the API version pinned to the
// daemon's own (api.APIVersion: no /_ping to negotiate before the first
// call), sends it, decodes the JSON answer, and turns an error answer into
// a *ResponseError that prints as the docker CLI prints it ("Error
// response from daemon: <message>") and matches containerd's errdefs
// kinds by status (cerrdefs.IsNotFound for 404 ...). Attach and exec
// start take over the connection after Docker's 101 upgrade (hijack.go);
// logs, stats, export, save and copies are the answer's body, read as it
// comes. The methods keep the docker client's names and option structs,
// with only what the fusebox CLI sets.
//
// fusebox has no init system to rely on, so when the socket is absent or
// refuses connections, [Connect] re-executes the running binary as
// `fusebox daemon` (which hands over to the engine binary, fuseboxd) in a
// session of its own (setsid), with its output appended to the root's
// daemon.log, and waits for /_ping to answer. When it does not, the error
// names the log, because that is where the daemon said why.
package client
