package launcher

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	profiles "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Values of Options.Seccomp besides a profile in Docker's JSON format, as
// `--security-opt seccomp=VALUE` takes them.
const (
	// SeccompDefault is Docker's default profile; so is SeccompBuiltin.
	SeccompDefault = ""
	// SeccompBuiltin names Docker's default profile explicitly.
	SeccompBuiltin = "builtin"
	// SeccompUnconfined runs the container without a seccomp filter.
	SeccompUnconfined = "unconfined"
)

// ErrSeccompProfile is wrapped by the error of a seccomp profile that
// can't be decoded or turned into a filter.
var ErrSeccompProfile = errors.New("invalid seccomp profile")

// SeccompSupported reports whether this binary can load seccomp filters:
// runc's libcontainer only can when built with cgo and the `seccomp` build
// tag (which links Debian's libseccomp). A shim without that support runs
// its containers unconfined, with a warning in its log, as Docker does on a
// host without seccomp; the daemon says so in `info`.
func SeccompSupported() bool { return seccomp.Enabled }

// NoSeccompSupport says, for messages, why a binary without SeccompSupported
// runs its containers unconfined.
const NoSeccompSupport = "built without seccomp support (cgo and -tags seccomp)"

// seccompProfile returns the filter a container with spec s (its
// capabilities already set) runs under: none when privileged or
// unconfined, Docker's default profile by default, otherwise the given
// JSON profile. Like Docker's, both profiles allow some syscalls only to a
// container that has the capability they need (CAP_SYS_ADMIN for mount and
// unshare, and so on).
func seccompProfile(s *specs.Spec, o Options) (*specs.LinuxSeccomp, error) {
	switch {
	case o.Privileged || o.Seccomp == SeccompUnconfined:
		return nil, nil
	case o.Seccomp == SeccompDefault || o.Seccomp == SeccompBuiltin:
		if slices.Equal(s.Process.Capabilities.Bounding, defaultCapabilities) {
			return defaultProfile()
		}
		return dockerDefault(s)
	}
	p, err := profiles.LoadProfile(o.Seccomp, s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSeccompProfile, err)
	}
	return p, nil
}

// DefaultSeccomp is the filter a container with Docker's default
// capabilities runs under: Docker's default profile. The bench gives it to
// its `runc run` anchor, so that both sides of the start figure load the
// same filter.
func DefaultSeccomp() (*specs.LinuxSeccomp, error) { return defaultProfile() }

// defaultProfile is Docker's default profile for a container with Docker's
// default capabilities, made once: the specs it goes into are only
// encoded, never changed, so every container can share it.
var defaultProfile = sync.OnceValues(func() (*specs.LinuxSeccomp, error) {
	return dockerDefault(defaultCapsSpec())
})

// dockerDefault is Docker's default profile for a process with s's
// capabilities.
func dockerDefault(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	p, err := profiles.GetDefaultProfile(s)
	if err != nil {
		return nil, fmt.Errorf("%w: docker's default: %w", ErrSeccompProfile, err)
	}
	return p, nil
}

// defaultCapsSpec is the part of a spec the profiles read: a process with
// Docker's default capabilities.
func defaultCapsSpec() *specs.Spec {
	return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding: slices.Clone(defaultCapabilities),
	}}}
}

// CheckSeccompProfile reports whether profile, a `--security-opt seccomp=`
// value (SeccompUnconfined, SeccompBuiltin or a profile in Docker's JSON
// format), can be turned into a filter, so that a container with a bad one
// is refused when it is created rather than when it starts.
func CheckSeccompProfile(profile string) error {
	p, err := seccompProfile(defaultCapsSpec(), Options{Seccomp: profile})
	if err != nil || p == nil {
		return err
	}
	// The conversion the shim makes checks the actions, operators and
	// architectures; syscall names are only resolved by libseccomp when
	// the filter is loaded, and an unknown one is skipped there, as runc
	// does.
	if _, err := specconv.SetupSeccomp(p); err != nil {
		return fmt.Errorf("%w: %w", ErrSeccompProfile, err)
	}
	return nil
}
