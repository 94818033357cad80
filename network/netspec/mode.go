package netspec

import (
	"errors"
	"fmt"
	"strings"
)

// Names of the predefined networks, as `network ls` shows them.
const (
	DefaultNetwork = "bridge" // the default bridge network, bridge DefaultBridge
	HostNetwork    = "host"
	NoneNetwork    = "none"
)

// Kind says how a container gets its network stack.
type Kind string

const (
	KindBridge    Kind = "bridge"    // own netns on a bridge network (default or user-defined)
	KindNone      Kind = "none"      // own netns with only lo
	KindHost      Kind = "host"      // the host's netns: no netns is made
	KindContainer Kind = "container" // another container's netns
)

// Mode is a parsed --net/--network value.
type Mode struct {
	Kind      Kind
	Network   string // KindBridge: the network's name or id
	Container string // KindContainer: the other container's name or id, as given
}

// ErrInvalidMode is wrapped by ParseMode's errors.
var ErrInvalidMode = errors.New("invalid network mode")

// ParseMode parses --net: "" and "default" and "bridge" are the default
// bridge network, "none", "host", "container:NAME|ID", and anything else is
// the name or id of a user-defined network (checked later, by Setup).
func ParseMode(s string) (Mode, error) {
	switch {
	case s == "" || s == "default" || s == DefaultNetwork:
		return Mode{Kind: KindBridge, Network: DefaultNetwork}, nil
	case s == NoneNetwork:
		return Mode{Kind: KindNone}, nil
	case s == HostNetwork:
		return Mode{Kind: KindHost}, nil
	case strings.HasPrefix(s, "container:"):
		c := strings.TrimPrefix(s, "container:")
		if c == "" {
			return Mode{}, fmt.Errorf("invalid container format container:<name|id>: %w", ErrInvalidMode)
		}
		return Mode{Kind: KindContainer, Container: c}, nil
	case strings.HasPrefix(s, "container"):
		return Mode{}, fmt.Errorf("invalid container format container:<name|id>: %w", ErrInvalidMode)
	}
	if !ValidName(s) {
		return Mode{}, fmt.Errorf("invalid network name %q: %w", s, ErrInvalidMode)
	}
	return Mode{Kind: KindBridge, Network: s}, nil
}

// String gives back the --net value.
func (m Mode) String() string {
	switch m.Kind {
	case KindBridge:
		if m.Network == "" {
			return DefaultNetwork
		}
		return m.Network
	case KindContainer:
		return "container:" + m.Container
	default:
		return string(m.Kind)
	}
}

// ValidName is the rule CNI puts on network names and container ids (they
// become file names and iptables comments): a letter or digit, then letters,
// digits, '_', '.', '-'.
func ValidName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '_' || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return true
}
