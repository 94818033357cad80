package launcher

import (
	"fmt"
	"os"
	"runtime"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's constructor runs before the Go runtime starts when a shim
	// re-executes its binary as `<exe> init`: it joins or creates the
	// container's namespaces while the process is still single-threaded. In
	// any other process it does nothing.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// InitArg is the argument with which libcontainer re-executes the shim's
// binary as the container's init.
const InitArg = "init"

// initWired records that this binary calls ContainerInit, and so answers
// the arguments it handles when it is run as "/proc/self/exe".
var initWired bool

// ContainerInit turns the process into libcontainer's container init when
// the shim re-executed its binary as `<exe> init` (or into the child that
// compiles a seccomp profile, see filter.go): it then sets up the
// container (mounts, pivot_root, capabilities) and exec's the command,
// never returning. Anything else returns at once. Call it from an init
// function of the main package, so that nothing else starts first; every
// package the binary imports still runs its own init before it, which is
// why the daemon prefers the small fusebox-shim binary (ShimExe) to itself.
func ContainerInit() {
	initWired = true
	if len(os.Args) == 2 && os.Args[1] == filterArg {
		os.Exit(compileFilterChild())
	}
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		if err := armFilter(); err != nil {
			// libcontainer has not started: its parent sees the init
			// exit before it is ready and fails the start; this line
			// goes to the container's stderr.
			fmt.Fprintln(os.Stderr, "fusebox init:", err)
			os.Exit(1)
		}
		// The namespace and credential changes libcontainer makes apply to
		// the calling thread, so the init must stay on the main thread.
		runtime.LockOSThread()
		libcontainer.Init()
	}
}
