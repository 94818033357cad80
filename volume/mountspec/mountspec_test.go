package mountspec

import (
	"errors"
	"strings"
	"testing"
)

// TestParseMountFlagErrors checks Docker's words for a bad --mount, each
// matching ErrInvalidSpec; volume's tests check good flags through to the
// daemon's mount point.
func TestParseMountFlagErrors(t *testing.T) {
	for _, c := range []struct{ flag, msg string }{
		{"foo", "invalid field 'foo' must be a key=value pair"},
		{"type=bind,color=red,target=/x", "unexpected key 'color' in 'color=red'"},
		{"type=bind,source=/x", "target is required"},
		{"target=/x,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'volume'"},
		{"type=tmpfs,target=/x,bind-propagation=shared", "cannot mix 'bind-*' options"},
		{"type=bind,target=/x,readonly=maybe", "invalid value for readonly: maybe"},
		{`"unclosed`, "invalid --mount"},
	} {
		_, err := ParseMountFlag(c.flag)
		if err == nil || !strings.Contains(err.Error(), c.msg) || !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("ParseMountFlag(%q): %v, want %q", c.flag, err, c.msg)
		}
	}
}
