package daemon

import (
	"errors"
	"testing"
)

func TestParseSecurityOpts(t *testing.T) {
	const profile = `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`
	ok := []struct {
		opts []string
		want securityOpts
	}{
		{nil, securityOpts{}},
		{[]string{"seccomp=unconfined"}, securityOpts{seccomp: "unconfined"}},
		{[]string{"seccomp:unconfined"}, securityOpts{seccomp: "unconfined"}},
		{[]string{"seccomp=builtin"}, securityOpts{seccomp: "builtin"}},
		{[]string{"seccomp=" + profile}, securityOpts{seccomp: profile}},
		{[]string{"no-new-privileges"}, securityOpts{noNewPrivileges: true}},
		{[]string{"no-new-privileges=true", "no-new-privileges:false"}, securityOpts{}},
	}
	for _, c := range ok {
		got, err := parseSecurityOpts(c.opts)
		if err != nil || got != c.want {
			t.Errorf("parseSecurityOpts(%q) = %+v, %v; want %+v", c.opts, got, err, c.want)
		}
	}
	bad := map[string]string{
		"nonsense":                  `invalid --security-opt 1: "nonsense"`,
		"apparmor=unconfined":       `invalid --security-opt 2: "apparmor=unconfined"`,
		"no-new-privileges=maybe":   `invalid --security-opt 2: "no-new-privileges=maybe"`,
		"seccomp=/etc/profile.json": "invalid seccomp profile: Decoding seccomp profile failed: invalid character '/' looking for beginning of value",
	}
	for opt, msg := range bad {
		_, err := parseSecurityOpts([]string{opt})
		if err == nil || err.Error() != msg || !errors.Is(err, ErrBadParameter) {
			t.Errorf("parseSecurityOpts(%q): %v, want %q", opt, err, msg)
		}
	}
}
