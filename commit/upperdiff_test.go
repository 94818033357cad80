package commit_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/commit"
	"github.com/fusebox/fusebox/testdata"
)

// mountCount is the number of mounts this process sees.
func mountCount(t testing.TB) int {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	must(t, err)
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	must(t, sc.Err())
	return n
}

// stoppedScenarios add to the commit scenarios the shapes a stopped
// container's diff must list without a mount: adds in a new directory, a
// delete in a lower directory, and a renamed lower directory changed inside
// after the move (a lower file deleted, a new subdirectory).
var stoppedScenarios = []struct {
	name string
	do   func(t *testing.T, c *ctr)
	diff string
}{
	{"add-in-new-dir", func(t *testing.T, c *ctr) {
		must(t, os.MkdirAll(c.p("opt/new/deep"), 0755))
		must(t, os.WriteFile(c.p("opt/new/a"), []byte("a"), 0644))
		must(t, os.WriteFile(c.p("opt/new/deep/b"), []byte("b"), 0644))
	}, "A /opt\nA /opt/new\nA /opt/new/a\nA /opt/new/deep\nA /opt/new/deep/b\n"},
	{"delete-in-lower-dir", func(t *testing.T, c *ctr) {
		must(t, os.Remove(c.p("srv/data/b.txt")))
	}, "C /srv\nC /srv/data\nD /srv/data/b.txt\n"},
	{"rename-lower-dir-changed-inside", func(t *testing.T, c *ctr) {
		must(t, os.Rename(c.p("srv/data"), c.p("srv/moved")))
		must(t, os.Remove(c.p("srv/moved/a.txt")))
		must(t, os.MkdirAll(c.p("srv/moved/sub/deeper"), 0755))
		must(t, os.WriteFile(c.p("srv/moved/sub/deeper/n"), []byte("n"), 0644))
	}, "C /srv\nD /srv/data\nA /srv/moved\nA /srv/moved/a-hardlink.txt\nA /srv/moved/b.txt\nA /srv/moved/link-to-a\nA /srv/moved/sub\nA /srv/moved/sub/deeper\nA /srv/moved/sub/deeper/n\n"},
	{"rename-lower-parent-dir", func(t *testing.T, c *ctr) {
		must(t, os.Rename(c.p("srv"), c.p("srv2")))
		must(t, os.WriteFile(c.p("srv2/data/new"), []byte("n"), 0644))
	}, ""},
}

// TestStoppedDiff checks that a stopped container's diff, from its journal,
// its upper dir and the image's file indexes, is the running container's
// diff (read through the merged view), and that it mounts nothing.
func TestStoppedDiff(t *testing.T) {
	img := testdata.Busybox(t)
	type scenario struct {
		name string
		do   func(t *testing.T, c *ctr)
		diff string
	}
	var all []scenario
	for _, sc := range scenarios {
		all = append(all, scenario{sc.name, sc.do, sc.diff})
	}
	for _, sc := range stoppedScenarios {
		all = append(all, scenario{sc.name, sc.do, sc.diff})
	}
	for _, sc := range all {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t)
			parent := loadImage(t, s, img)
			c := runCtr(t, s, parent)
			sc.do(t, c)
			live, err := commit.Diff(ctx, c.mount())
			must(t, err)
			if sc.diff != "" && commit.Format(live) != sc.diff {
				t.Errorf("running diff:\n%swant:\n%s", commit.Format(live), sc.diff)
			}
			changes := c.srv.Journal().Changes()
			must(t, c.srv.Unmount())
			rec, err := s.Image(ctx, parent)
			must(t, err)
			before := mountCount(t)
			stopped, err := commit.Diff(ctx, commit.Mount{Upper: c.upper, Changes: changes, Lower: commit.IndexLower(s, rec.DiffIDs)})
			must(t, err)
			if after := mountCount(t); after != before {
				t.Errorf("the stopped diff mounted something: %d mounts before, %d after", before, after)
			}
			if got, want := commit.Format(stopped), commit.Format(live); got != want {
				t.Errorf("stopped diff:\n%srunning diff:\n%s", got, want)
			}
			if !strings.Contains(commit.Format(stopped), " /") && len(changes) > 0 {
				t.Error("an empty diff for a container that changed something")
			}
		})
	}
}

// TestStoppedDiffNeedsLower: a renamed directory cannot be listed without
// the image's indexes, and Diff says so rather than listing it short.
func TestStoppedDiffNeedsLower(t *testing.T) {
	s := openStore(t)
	parent := loadImage(t, s, testdata.Busybox(t))
	c := runCtr(t, s, parent)
	must(t, os.Rename(c.p("srv/data"), c.p("srv/moved")))
	changes := c.srv.Journal().Changes()
	if _, err := commit.Diff(context.Background(), commit.Mount{Upper: c.upper, Changes: changes}); err == nil {
		t.Fatal("a stopped diff of a renamed directory without the image's indexes succeeded")
	}
}

// TestIndexLower merges layer indexes as a union mount shows them: a
// whiteout hides a lower file, an opaque directory its lower contents, a
// file a lower directory, and a higher layer adds.
func TestIndexLower(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	type ent struct {
		name string
		dir  bool
	}
	layer := func(es ...ent) digest.Digest {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, e := range es {
			h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: 1}
			white := strings.Contains(e.name, ".wh.")
			if white {
				h.Size = 0
			}
			if e.dir {
				h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
			}
			must(t, tw.WriteHeader(h))
			if !e.dir && !white {
				_, err := tw.Write([]byte("x"))
				must(t, err)
			}
		}
		must(t, tw.Close())
		info, err := s.IngestLayer(ctx, &b, cas.IngestOptions{})
		must(t, err)
		return info.DiffID
	}
	bottom := layer(ent{"a/", true}, ent{"a/x", false}, ent{"a/y", false}, ent{"a/sub/", true}, ent{"a/sub/z", false},
		ent{"b/", true}, ent{"b/q", false})
	middle := layer(ent{"a/", true}, ent{"a/.wh.x", false}, ent{"a/sub/", true}, ent{"a/sub/.wh..wh..opq", false},
		ent{"a/sub/new", false}, ent{"b", false})
	top := layer(ent{"a/", true}, ent{"a/w", false})
	l := commit.IndexLower(s, []digest.Digest{bottom, middle, top})
	for _, tc := range []struct {
		dir  string
		want map[string]bool
	}{
		{"a", map[string]bool{"y": false, "sub": true, "sub/new": false, "w": false}},
		{"/a/sub", map[string]bool{"new": false}},
		{"b", map[string]bool{}},
		{"nothing", map[string]bool{}},
		{"", map[string]bool{"a": true, "a/y": false, "a/sub": true, "a/sub/new": false, "a/w": false, "b": false}},
	} {
		got, err := l.ListLower(ctx, tc.dir)
		must(t, err)
		if !maps.Equal(got, tc.want) {
			t.Errorf("ListLower(%q) = %v, want %v", tc.dir, got, tc.want)
		}
	}
}
