package netspec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParsePublish(t *testing.T) {
	tcp := func(ip string, h, he, c uint16) PortBinding {
		return PortBinding{HostIP: ip, HostPort: h, HostPortEnd: he, ContainerPort: c, Proto: "tcp"}
	}
	tests := []struct {
		spec string
		want []PortBinding
		err  string // Docker's message, exactly
	}{
		{spec: "80", want: []PortBinding{tcp("", 0, 0, 80)}},
		{spec: "5000:5000", want: []PortBinding{tcp("", 5000, 0, 5000)}},
		{spec: "127.0.0.1:8080:80", want: []PortBinding{tcp("127.0.0.1", 8080, 0, 80)}},
		{spec: "127.0.0.1::80", want: []PortBinding{tcp("127.0.0.1", 0, 0, 80)}},
		{spec: "0.0.0.0:81:80", want: []PortBinding{tcp("", 81, 0, 80)}},
		{spec: "53:53/udp", want: []PortBinding{{HostPort: 53, ContainerPort: 53, Proto: "udp"}}},
		{spec: "53:53/UDP", want: []PortBinding{{HostPort: 53, ContainerPort: 53, Proto: "udp"}}},
		{spec: "8000-8002:80-82", want: []PortBinding{tcp("", 8000, 0, 80), tcp("", 8001, 0, 81), tcp("", 8002, 0, 82)}},
		{spec: "8000-8010:80", want: []PortBinding{tcp("", 8000, 8010, 80)}},
		{spec: "80-81/tcp", want: []PortBinding{tcp("", 0, 0, 80), tcp("", 0, 0, 81)}},
		{spec: "", err: "no port specified: <empty>"},
		{spec: "8080:", err: "no port specified: 8080:<empty>"},
		{spec: "abc", err: "invalid containerPort: abc"},
		{spec: "0", err: "invalid containerPort: 0"},
		{spec: "70000", err: "invalid containerPort: 70000"},
		{spec: "x:80", err: "invalid hostPort: x"},
		{spec: "80:80/sctp", err: "invalid proto: sctp"},
		{spec: "80:80/icmp", err: "invalid proto: icmp"},
		{spec: "1.2.3:80:80", err: "invalid IP address: 1.2.3"},
		{spec: "8000-8001:80-82", err: "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"},
		{spec: "90-80", err: "invalid containerPort: 90-80"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParsePublish(tt.spec)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err || !errors.Is(err, ErrInvalidPort) {
					t.Fatalf("ParsePublish(%q) = %v, %v; want error %q wrapping ErrInvalidPort", tt.spec, got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParsePublish(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
			}
		})
	}
}

func TestParseBinding(t *testing.T) {
	got, err := ParseBinding("80/tcp", "127.0.0.1", "5000")
	if err != nil || !reflect.DeepEqual(got, []PortBinding{{HostIP: "127.0.0.1", HostPort: 5000, ContainerPort: 80, Proto: "tcp"}}) {
		t.Fatalf("got %+v, %v", got, err)
	}
	got, err = ParseBinding("53/udp", "", "")
	if err != nil || !reflect.DeepEqual(got, []PortBinding{{ContainerPort: 53, Proto: "udp"}}) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := ParseBinding("80/tcp", "", "nope"); !errors.Is(err, ErrInvalidPort) {
		t.Fatalf("bad host port: %v", err)
	}
}

func TestParseExposeAndPublishAll(t *testing.T) {
	exp, err := ParseExpose("8000-8001/udp")
	if err != nil || len(exp) != 2 || exp[1] != (ExposedPort{8001, "udp"}) {
		t.Fatalf("ParseExpose = %v, %v", exp, err)
	}
	if _, err := ParseExpose("x/tcp"); err == nil || err.Error() != "invalid range format for --expose: x/tcp" {
		t.Fatalf("ParseExpose(x/tcp) error = %v", err)
	}
	explicit := []PortBinding{{HostPort: 9000, ContainerPort: 80, Proto: "tcp"}}
	all := PublishAll([]ExposedPort{{80, "tcp"}, {443, "tcp"}, {443, "tcp"}}, explicit)
	want := []PortBinding{explicit[0], {ContainerPort: 443, Proto: "tcp"}}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("PublishAll = %+v, want %+v", all, want)
	}
}

func TestPortLinesAndColumn(t *testing.T) {
	bs := []PortBinding{
		{HostPort: 5000, ContainerPort: 5000, Proto: "tcp"},
		{HostIP: "127.0.0.1", HostPort: 8081, ContainerPort: 81, Proto: "tcp"},
		{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
		{HostPort: 5353, ContainerPort: 53, Proto: "udp"},
	}
	lines, err := PortLines(bs, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"53/udp -> 0.0.0.0:5353", "80/tcp -> 127.0.0.1:8080", "81/tcp -> 127.0.0.1:8081", "5000/tcp -> 0.0.0.0:5000"}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("PortLines = %q, want %q", lines, want)
	}
	if l, err := PortLines(bs, "5000"); err != nil || !reflect.DeepEqual(l, []string{"0.0.0.0:5000"}) {
		t.Fatalf("PortLines(5000) = %q, %v", l, err)
	}
	if l, err := PortLines(bs, "53/udp"); err != nil || !reflect.DeepEqual(l, []string{"0.0.0.0:5353"}) {
		t.Fatalf("PortLines(53/udp) = %q, %v", l, err)
	}
	if _, err := PortLines(bs, "53"); !errors.Is(err, ErrNoPublicPort) || !strings.Contains(err.Error(), "53/tcp") {
		t.Fatalf("PortLines(53) error = %v", err)
	}
	cols := []struct {
		bs   []PortBinding
		exp  []ExposedPort
		want string
	}{
		{bs: bs[:1], want: "0.0.0.0:5000->5000/tcp"},
		{bs: bs, exp: []ExposedPort{{443, "tcp"}, {80, "tcp"}}, want: "443/tcp, 0.0.0.0:5000->5000/tcp, 0.0.0.0:5353->53/udp, 127.0.0.1:8080-8081->80-81/tcp"},
		{exp: []ExposedPort{{80, "tcp"}, {81, "tcp"}}, want: "80-81/tcp"},
		{want: ""},
	}
	for _, c := range cols {
		if got := PortsColumn(c.bs, c.exp); got != c.want {
			t.Errorf("PortsColumn(%v, %v) = %q, want %q", c.bs, c.exp, got, c.want)
		}
	}
}

func TestAPIPorts(t *testing.T) {
	got := APIPorts([]PortBinding{{HostPort: 5000, ContainerPort: 5000, Proto: "tcp"}, {HostIP: "127.0.0.1", HostPort: 53, ContainerPort: 53, Proto: "udp"}},
		[]ExposedPort{{5000, "tcp"}, {443, "tcp"}})
	want := map[string][]APIBinding{
		"5000/tcp": {{HostIP: "0.0.0.0", HostPort: "5000"}},
		"53/udp":   {{HostIP: "127.0.0.1", HostPort: "53"}},
		"443/tcp":  nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("APIPorts = %#v, want %#v", got, want)
	}
}
