package main

import (
	"os"
	"runtime"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's constructor runs before the Go runtime starts when the
	// binary is re-executed as `fusebox init`: it joins or creates the
	// container's namespaces while the process is still single-threaded.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// init turns the binary into libcontainer's container init when the shim
// re-executes it as `fusebox init`: the process then sets up the container
// (mounts, pivot_root, capabilities) and exec's the command, never reaching
// main. Anything else runs the CLI.
func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		// The namespace and credential changes libcontainer makes apply to
		// the calling thread, so the init must stay on the main thread.
		runtime.LockOSThread()
		libcontainer.Init()
	}
}
