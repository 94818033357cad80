package formatter

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

type row struct {
	Repository, Tag, ID, Size string
	Labels                    []string
}

var imageList = List{
	DefaultTable: "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}",
	Headers:      map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Size": "SIZE"},
	QuietField:   "ID",
}

func TestListWrite(t *testing.T) {
	rows := []any{
		row{"busybox", "latest", "0123456789ab", "4.27MB", []string{"a", "b"}},
		row{"docker.io/example/long-repository-name", "v1.2.3", "ba9876543210", "1.2GB", nil},
	}
	tests := []struct {
		name   string
		format string
		quiet  bool
		want   string
	}{
		{"default table", "", false, "" +
			"REPOSITORY                               TAG       IMAGE ID       SIZE\n" +
			"busybox                                  latest    0123456789ab   4.27MB\n" +
			"docker.io/example/long-repository-name   v1.2.3    ba9876543210   1.2GB\n"},
		{"custom table", "table {{.ID}}\t{{upper .Tag}}", false, "" +
			"IMAGE ID       TAG\n" +
			"0123456789ab   LATEST\n" +
			"ba9876543210   V1.2.3\n"},
		{"escaped tab", `table {{.Tag}}\t{{.ID}}`, false, "" +
			"TAG       IMAGE ID\n" +
			"latest    0123456789ab\n" +
			"v1.2.3    ba9876543210\n"},
		{"plain template", "{{.Repository}}:{{.Tag}} {{join .Labels \",\"}}", false, "busybox:latest a,b\ndocker.io/example/long-repository-name:v1.2.3 \n"},
		{"functions", "{{truncate .ID 4}}|{{pad .Tag 1 1}}|{{title .Tag}}|{{lower (upper .Tag)}}|{{index (split .Repository \"/\") 0}}", false, "0123| latest |Latest|latest|busybox\nba98| v1.2.3 |V1.2.3|v1.2.3|docker.io\n"},
		{"json", "{{json .Labels}}", false, "[\"a\",\"b\"]\nnull\n"},
		{"quiet", "", true, "0123456789ab\nba9876543210\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := imageList
			l.Format, l.Quiet = tt.format, tt.quiet
			var b bytes.Buffer
			if err := l.Write(&b, rows); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestBadTemplate(t *testing.T) {
	l := imageList
	l.Format = "{{.Nope"
	err := l.Write(&bytes.Buffer{}, []any{row{}})
	if err == nil || !strings.Contains(err.Error(), "template parsing error") {
		t.Fatalf("err = %v", err)
	}
	l.Format = "{{.Nope}}"
	if err := l.Write(&bytes.Buffer{}, []any{row{}}); err == nil {
		t.Fatal("unknown field: want an error")
	}
}

func TestRenderings(t *testing.T) {
	tests := []struct{ got, want string }{
		{Size(4270000), "4.27MB"},
		{Size(0), "0B"},
		{Size(1_234_567_890), "1.23GB"},
		{Size(999), "999B"},
		{ShortID("sha256:0123456789abcdef0123"), "0123456789ab"},
		{ShortID("abc"), "abc"},
		{Ago(time.Now().Add(-49 * time.Hour)), "2 days ago"},
		{Ago(time.Now().Add(-90 * time.Second)), "About a minute ago"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
