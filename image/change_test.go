package image

import (
	"errors"
	"reflect"
	"testing"

	ocispec "github.com/moby/docker-image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	tests := []struct {
		name    string
		changes []string
		check   func(c *ocispec.DockerOCIImageConfig) any
		want    any
	}{
		{"cmd json", []string{`CMD ["/bin/sh", "-c", "echo hi"]`}, func(c *ocispec.DockerOCIImageConfig) any { return c.Cmd }, []string{"/bin/sh", "-c", "echo hi"}},
		{"cmd shell", []string{`CMD echo hi`}, func(c *ocispec.DockerOCIImageConfig) any { return c.Cmd }, []string{"/bin/sh", "-c", "echo hi"}},
		{"lowercase instruction", []string{`cmd ["ls"]`}, func(c *ocispec.DockerOCIImageConfig) any { return c.Cmd }, []string{"ls"}},
		{"entrypoint", []string{`ENTRYPOINT ["/init"]`}, func(c *ocispec.DockerOCIImageConfig) any { return c.Entrypoint }, []string{"/init"}},
		{"env pairs", []string{`ENV A=1 B="two words"`, `ENV A=3`}, func(c *ocispec.DockerOCIImageConfig) any { return c.Env }, []string{"A=3", "B=two words"}},
		{"env legacy", []string{`ENV PATH /usr/bin:/bin`}, func(c *ocispec.DockerOCIImageConfig) any { return c.Env }, []string{"PATH=/usr/bin:/bin"}},
		{"workdir", []string{`WORKDIR /app`, `WORKDIR sub`}, func(c *ocispec.DockerOCIImageConfig) any { return c.WorkingDir }, "/app/sub"},
		{"expose", []string{`EXPOSE 80 53/udp`}, func(c *ocispec.DockerOCIImageConfig) any { return c.ExposedPorts }, map[string]struct{}{"80/tcp": {}, "53/udp": {}}},
		{"user", []string{`USER nobody`}, func(c *ocispec.DockerOCIImageConfig) any { return c.User }, "nobody"},
		{"label", []string{`LABEL a=b "c d"=e`}, func(c *ocispec.DockerOCIImageConfig) any { return c.Labels }, map[string]string{"a": "b", "c d": "e"}},
		{"volume json", []string{`VOLUME ["/data", "/logs"]`}, func(c *ocispec.DockerOCIImageConfig) any { return c.Volumes }, map[string]struct{}{"/data": {}, "/logs": {}}},
		{"volume shell", []string{`VOLUME /a /b`}, func(c *ocispec.DockerOCIImageConfig) any { return c.Volumes }, map[string]struct{}{"/a": {}, "/b": {}}},
		{"stopsignal", []string{`STOPSIGNAL SIGKILL`}, func(c *ocispec.DockerOCIImageConfig) any { return c.StopSignal }, "SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c ocispec.DockerOCIImageConfig
			if err := ApplyChanges(&c, tt.changes); err != nil {
				t.Fatal(err)
			}
			if got := tt.check(&c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestApplyChangesErrors(t *testing.T) {
	for _, change := range []string{
		"RUN echo hi",
		"FROM busybox",
		"CMD",
		"ENV",
		"ENV A",
		"EXPOSE 99999",
		"EXPOSE 80/xyz",
		`LABEL "unterminated=1`,
		"",
	} {
		t.Run(change, func(t *testing.T) {
			var c ocispec.DockerOCIImageConfig
			if err := ApplyChanges(&c, []string{change}); !errors.Is(err, ErrBadChange) {
				t.Fatalf("err = %v, want ErrBadChange", err)
			}
		})
	}
}
