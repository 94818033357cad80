// Package client is the CLI's side of the daemon's API: the official Docker
// Go client (github.com/moby/moby/client) pointed at fusebox's socket, plus
// the one thing Docker's client never does, starting the daemon. fusebox has
// no init system to rely on, so when the socket is absent or refuses
// connections, [Connect] re-executes the running binary as `fusebox daemon`
// (which hands over to the engine binary, fuseboxd) in a session of its own
// (setsid), with its output appended to the root's daemon.log, and waits
// for /_ping to answer. When it does not, the error names the log, because
// that is where the daemon said why.
package client
