package main

import "github.com/fusebox/fusebox/launcher"

// init turns the binary into libcontainer's container init when a shim
// re-executes it as `fusebox init` (the daemon's fallback when there is no
// fusebox-shim next to it); anything else runs the CLI.
func init() { launcher.ContainerInit() }
