package volume

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"

	"github.com/fusebox/fusebox/volume/mountspec"
)

func TestParseBind(t *testing.T) {
	for _, c := range []struct {
		spec string
		want MountPoint
	}{
		{"/ctr", MountPoint{Type: mount.TypeVolume, Destination: "/ctr", RW: true, Anonymous: true}},
		{"/host/:/ctr/", MountPoint{Type: mount.TypeBind, Source: "/host", Destination: "/ctr", RW: true, Propagation: "rprivate", CreateSource: true}},
		{"/host:/ctr:ro", MountPoint{Type: mount.TypeBind, Source: "/host", Destination: "/ctr", Mode: "ro", Propagation: "rprivate", CreateSource: true}},
		{"/host:/ctr:rw,rshared", MountPoint{Type: mount.TypeBind, Source: "/host", Destination: "/ctr", Mode: "rw,rshared", RW: true, Propagation: "rshared", CreateSource: true}},
		{"data:/ctr", MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/ctr", RW: true}},
		{"data:/ctr:ro,nocopy", MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/ctr", Mode: "ro,nocopy", NoCopy: true}},
		{"data:/ctr:z", MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/ctr", Mode: "z", RW: true}},
	} {
		got, err := ParseBind(c.spec)
		if err != nil {
			t.Errorf("ParseBind(%q): %v", c.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseBind(%q) =\n%+v, want\n%+v", c.spec, got, c.want)
		}
	}
	for _, c := range []struct{ spec, msg string }{
		{"", "invalid empty volume spec"},
		{"/a:/b:/c:/d", "invalid spec: /a:/b:/c:/d: too many colons"},
		{"/ctr:ro", "invalid volume specification: '/ctr:ro'"},
		{"a/b:/c", `create a/b: "a/b" includes invalid characters for a local volume name`},
		{"x:/c", `create x: "x" includes invalid characters`},
		{"/h:rel", "invalid mount path: 'rel' mount path must be absolute"},
		{"/h:/", "destination can't be '/'"},
		{"/h:/c:ro,rw", "invalid mode: ro,rw"},
		{"/h:/c:bogus", "invalid mode: bogus"},
		{"/h:/c:nocopy", "nocopy is for volumes"},
		{"v1:/c:shared", "propagation is for bind mounts"},
	} {
		_, err := ParseBind(c.spec)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseBind(%q): %v, want %q", c.spec, err, c.msg)
			continue
		}
		if !errors.Is(err, ErrInvalidSpec) && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ParseBind(%q): %v is not ErrInvalidSpec or ErrInvalidName", c.spec, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseBind(%q): error has several lines", c.spec)
		}
	}
}

func TestParseMountFlagAndFromAPI(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		flag string
		want MountPoint
	}{
		{"type=bind,source=" + dir + ",target=/h,readonly,bind-propagation=rslave",
			MountPoint{Type: mount.TypeBind, Source: dir, Destination: "/h", Mode: "ro", Propagation: "rslave"}},
		{"type=bind,src=" + dir + "/missing,dst=/h,bind-nonrecursive=true",
			MountPoint{}}, // error: source missing
		{"src=vol,dst=/v,volume-nocopy,volume-label=a=b",
			MountPoint{Type: mount.TypeVolume, Name: "vol", Destination: "/v", RW: true, NoCopy: true, Labels: map[string]string{"a": "b"}}},
		{"type=volume,target=/anon",
			MountPoint{Type: mount.TypeVolume, Destination: "/anon", RW: true, Anonymous: true}},
		{"type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
			MountPoint{Type: mount.TypeTmpfs, Destination: "/t", RW: true, Options: []string{"nodev", "noexec", "nosuid", "size=1048576", "mode=1770"}}},
	} {
		m, err := mountspec.ParseMountFlag(c.flag)
		if err != nil {
			t.Errorf("ParseMountFlag(%q): %v", c.flag, err)
			continue
		}
		got, err := FromAPI(m)
		if c.want.Type == "" {
			if err == nil || !strings.Contains(err.Error(), "bind source path does not exist") {
				t.Errorf("FromAPI(%q): %v, want a missing source", c.flag, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("FromAPI(%q): %v", c.flag, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q =\n%+v, want\n%+v", c.flag, got, c.want)
		}
	}
	for _, c := range []struct {
		m   mount.Mount
		msg string
	}{
		{mount.Mount{Type: mount.TypeBind, Target: "/x"}, `invalid mount config for type "bind": field Source must not be empty`},
		{mount.Mount{Type: mount.TypeBind, Source: "rel", Target: "/x"}, "invalid mount path: 'rel' mount path must be absolute"},
		{mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "x"}, "invalid mount path: 'x' mount path must be absolute"},
		{mount.Mount{Type: mount.TypeTmpfs, Source: "s", Target: "/x"}, "field Source must not be specified"},
		{mount.Mount{Type: "npipe", Target: "/x"}, "mount type unknown"},
		{mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/x", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfs"}}}, `plugin "nfs" not found`},
	} {
		_, err := FromAPI(c.m)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("FromAPI(%+v): %v, want %q", c.m, err, c.msg)
		}
	}
}

func TestParseTmpfs(t *testing.T) {
	mp, err := ParseTmpfs("/run/", "size=64m,exec,mode=700")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"exec", "nodev", "nosuid", "size=67108864", "mode=700"}
	if mp.Destination != "/run" || !reflect.DeepEqual(mp.Options, want) || !mp.RW {
		t.Errorf("ParseTmpfs = %+v, want options %v", mp, want)
	}
	if mp, _ := ParseTmpfs("/t", "ro"); mp.RW {
		t.Error("ro tmpfs is RW")
	}
	for _, c := range [][2]string{{"rel", ""}, {"/", ""}, {"/t", "size=lots"}, {"/t", "mode=9"}} {
		if _, err := ParseTmpfs(c[0], c[1]); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("ParseTmpfs(%q, %q): %v", c[0], c[1], err)
		}
	}
}

func TestSpecAndSort(t *testing.T) {
	mps := []MountPoint{
		{Type: mount.TypeBind, Source: "/h", Destination: "/a/b/c", Mode: "ro"},
		{Type: mount.TypeTmpfs, Destination: "/a", RW: true, Options: []string{"nosuid"}},
		{Type: mount.TypeVolume, Name: "v", Source: "/vols/v/_data", Destination: "/a/b", RW: true},
	}
	Sort(mps)
	var order []string
	for _, m := range mps {
		order = append(order, m.Destination)
	}
	if strings.Join(order, " ") != "/a /a/b /a/b/c" {
		t.Errorf("sorted %v", order)
	}
	if s := mps[2].Spec(); s.Type != "bind" || strings.Join(s.Options, ",") != "rbind,rprivate,ro" {
		t.Errorf("bind spec %+v", s)
	}
	if s := mps[0].Spec(); s.Type != "tmpfs" || s.Source != "tmpfs" || strings.Join(s.Options, ",") != "nosuid" {
		t.Errorf("tmpfs spec %+v", s)
	}
	if a := mps[1].API(); a.Driver != "local" || a.Name != "v" || !a.RW {
		t.Errorf("volume API %+v", a)
	}
}
