package client

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// apiTimestamp turns a --since/--until value into the API's form, as the
// docker CLI does: a Go duration ("10m") counts back from now and becomes
// Unix seconds; an RFC 3339 date or time, with or without zone, fraction,
// seconds or minutes, becomes "seconds.nanoseconds" (a time without zone
// is local time); Unix seconds, with an optional fraction, pass through.
func apiTimestamp(value string, now time.Time) (string, error) {
	if d, err := time.ParseDuration(value); err == nil && value != "0" {
		return strconv.FormatInt(now.Add(-d).Unix(), 10), nil
	}
	local := !strings.ContainsAny(value, "zZ+") && strings.Count(value, "-") != 3
	layout := timeLayout(value, local)
	var t time.Time
	var err error
	if local {
		t, err = time.ParseInLocation(layout, value, time.FixedZone(now.Zone()))
	} else {
		t, err = time.Parse(layout, value)
	}
	if err == nil {
		return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()), nil
	}
	if strings.Contains(value, "-") {
		// A date that does not parse: say why.
		return "", err
	}
	if !unixSeconds(value) {
		return "", fmt.Errorf("failed to parse value as time or duration: %q", value)
	}
	return value, nil
}

// timeLayout picks the layout a date or time value is written in: with a
// fraction, with T and how many colons, or a bare date; local says
// whether it has no zone.
func timeLayout(value string, local bool) string {
	switch {
	case strings.Contains(value, "."):
		if local {
			return "2006-01-02T15:04:05.999999999"
		}
		return time.RFC3339Nano
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		if !local && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons-- // the zone's own colon, as in +01:00
		}
		layouts := [3]string{"2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05"}
		zone := ""
		if !local {
			zone = "Z07:00"
		}
		return layouts[min(colons, 2)] + zone
	case local:
		return "2006-01-02"
	}
	return "2006-01-02Z07:00"
}

// unixSeconds reports whether s is Unix seconds, with an optional
// fraction after a dot.
func unixSeconds(s string) bool {
	sec, frac, hasFrac := strings.Cut(s, ".")
	if _, err := strconv.ParseInt(sec, 10, 64); err != nil {
		return false
	}
	if hasFrac {
		if _, err := strconv.ParseInt(frac, 10, 64); err != nil {
			return false
		}
	}
	return true
}
