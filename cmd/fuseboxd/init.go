package main

import "github.com/fusebox/fusebox/launcher"

// init turns the binary into libcontainer's container init when a shim
// re-executes it as `fuseboxd init` (the daemon's fallback when there is no
// fusebox-shim next to it); anything else runs the commands.
func init() { launcher.ContainerInit() }
