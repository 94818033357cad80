// Command fusebox-shim is the per-container process the daemon starts for
// each container (`fusebox-shim shim STATE_DIR`), and, re-executed by
// libcontainer, the container's init. It is the same code as the hidden
// `fuseboxd shim` verb in a binary that links only the launcher: libcontainer
// re-executes the shim's binary for every container start, and the Go
// runtime and package initialisation of the whole engine binary (30 MB,
// ~200 packages) cost about 25 ms more per start than this one's. The
// daemon uses it when it sits next to fuseboxd.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fusebox/fusebox/launcher"
)

func init() { launcher.ContainerInit() }

func main() {
	if len(os.Args) != 3 || os.Args[1] != launcher.ShimArg {
		fmt.Fprintln(os.Stderr, "usage: fusebox-shim shim STATE_DIR (started by the fusebox daemon)")
		os.Exit(2)
	}
	// RunShim handles SIGTERM and SIGINT itself: they kill the container.
	if err := launcher.RunShim(context.Background(), os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "fusebox-shim:", err)
		os.Exit(1)
	}
}
