// Command fusebox is a container toolkit with Docker's verbs on a userspace
// union filesystem. See the README.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}
