// Package testenv holds the checks that tests make of the machine before
// they use what only root or a FUSE-capable kernel has: mounts, network
// namespaces, containers. Tests that need those skip, saying exactly what
// is missing, where the machine can't do them; on the project's machines
// and in CI they run. One package owns the checks so that every test words
// and decides them the same way.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireRoot skips t unless it runs as root; why says what needs root
// ("mounts and drops caches"), for the skip message.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s", why)
	}
}

// RequireFUSE skips t unless it runs as root with /dev/fuse, which every
// FUSE mount (layerfs, image mounts, containers) needs.
func RequireFUSE(t testing.TB, why string) {
	t.Helper()
	RequireRoot(t, why)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("needs /dev/fuse: %s", why)
	}
}

// RequireTool skips t unless the program name is on $PATH and returns its
// path; pkg names the Debian package that has it (scripts/install-deps
// installs it).
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("needs %s (Debian's %s)", name, pkg)
	}
	return p
}

// SeccompTags is the build flag that gives the binaries tests build with
// `go build` seccomp support (runc's libcontainer needs cgo and the seccomp
// tag, and libseccomp-dev to build): `make` passes it in GOFLAGS; for a
// plain `go test` it is added when libseccomp's header is installed, so that
// the tests run containers the way `make build`'s binaries do. Nil means
// GOFLAGS already has tags, or the machine can't build with seccomp.
func SeccompTags() []string {
	if strings.Contains(os.Getenv("GOFLAGS"), "-tags") {
		return nil
	}
	if _, err := os.Stat("/usr/include/seccomp.h"); err != nil {
		return nil
	}
	return []string{"-tags=seccomp"}
}
