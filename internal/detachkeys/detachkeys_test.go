package detachkeys

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		bad  bool
	}{
		{"", []byte{16, 17}, false},
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-x,a", []byte{24, 'a'}, false},
		{"CTRL-X", []byte{24}, false},
		{"ctrl-@,ctrl-[", []byte{0, 27}, false},
		{"ctrl-xx", nil, true},
		{"ctrl-1", nil, true},
		{"ab", nil, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) = %v, %v; want ErrInvalid", tt.in, got, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestReader(t *testing.T) {
	keys, _ := Parse("")
	tests := []struct {
		in, out  string
		detached bool
	}{
		{"hello", "hello", false},
		{"ab\x10\x11cd", "ab", true},
		{"a\x10b\x10\x11", "a\x10b", true},
		{"\x10\x10\x11", "\x10", true},
		{"x\x10", "x", false}, // a trailing partial sequence is held back
	}
	for _, tt := range tests {
		called := 0
		got, err := io.ReadAll(NewReader(strings.NewReader(tt.in), keys, func() { called++ }))
		if string(got) != tt.out || errors.Is(err, ErrDetached) != tt.detached {
			t.Errorf("%q: %q, %v", tt.in, got, err)
		}
		if want := map[bool]int{true: 1}[tt.detached]; called != want {
			t.Errorf("%q: onKeys called %d times, want %d", tt.in, called, want)
		}
	}
	got, err := io.ReadAll(NewReader(strings.NewReader("a\x10\x11"), nil, nil))
	if err != nil || string(got) != "a\x10\x11" {
		t.Errorf("no keys: %q, %v", got, err)
	}
}
