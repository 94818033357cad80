package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/fusebox/fusebox/image"
	"github.com/fusebox/fusebox/testdata"
)

// TestBusyboxRoundTrip loads the project's busybox test image (three
// layers, a whiteout, an opaque directory) in each of its archive forms,
// saves it again and checks that the image ID and every diff_id survive.
func TestBusyboxRoundTrip(t *testing.T) {
	bb := testdata.Busybox(t)
	forms := []struct {
		name, path string
		tagged     bool
	}{
		{"docker-archive", bb.DockerArchive, true},
		{"docker save 25", bb.DockerSave25, true},
		{"oci layout", bb.OCILayout, false},
		{"oci archive", bb.OCIArchive, false},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			if f.path == "" {
				t.Skip("form not built")
			}
			e := newEnv(t)
			out := e.ok("load", "-i", f.path)
			switch out {
			case "Loaded image: " + bb.RepoTag() + "\n":
			case "Loaded image ID: " + bb.ID.String() + "\n":
				// An OCI index whose ref name is a bare tag names no
				// repository: the image loads untagged.
				if f.tagged {
					t.Errorf("load lost the tag: %q", out)
				}
				e.ok("tag", bb.ID.Encoded()[:12], bb.RepoTag())
			default:
				t.Errorf("load: %q", out)
			}
			if out := e.ok("images", "-q", "--no-trunc"); out != bb.ID.String()+"\n" {
				t.Errorf("image ID %q, want %s", out, bb.ID)
			}
			saved := filepath.Join(t.TempDir(), "saved.tar")
			e.ok("save", "-o", saved, bb.RepoTag())
			a, err := image.OpenArchive(saved)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if len(a.Images) != 1 || a.Images[0].ID != bb.ID {
				t.Fatalf("saved %+v", a.Images)
			}
			var got []digest.Digest
			for _, l := range a.Images[0].Layers {
				rc, err := l.Open()
				if err != nil {
					t.Fatal(err)
				}
				d, err := digest.FromReader(rc)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, d)
			}
			if !reflect.DeepEqual(got, bb.DiffIDs) {
				t.Errorf("saved layers hash to %v, want %v", got, bb.DiffIDs)
			}
			if out := e.ok("system", "fsck"); !strings.Contains(out, ": 0 problems") {
				t.Errorf("fsck: %q", out)
			}
			if out := e.ok("history", "-q", bb.RepoTag()); !strings.HasPrefix(out, bb.ID.Encoded()[:12]+"\n") {
				t.Errorf("history: %q", out)
			}
		})
	}
}

// TestDockerCLIBusybox has the real docker CLI load and save the busybox
// test image.
func TestDockerCLIBusybox(t *testing.T) {
	requireDocker(t)
	bb := testdata.Busybox(t)
	e := newEnv(t)
	e.ok("version")
	if out := e.dockerOK("load", "-i", bb.DockerArchive); !strings.Contains(out, "Loaded image: "+bb.RepoTag()) {
		t.Errorf("docker load: %q", out)
	}
	saved := filepath.Join(t.TempDir(), "saved.tar")
	e.dockerOK("save", "-o", saved, bb.RepoTag())
	a, err := image.OpenArchive(saved)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Images[0].ID != bb.ID || len(a.Images[0].Layers) != len(bb.DiffIDs) {
		t.Errorf("docker save: %+v", a.Images[0])
	}
	for i, l := range a.Images[0].Layers {
		if l.DiffID != bb.DiffIDs[i] || l.Digest != bb.DiffIDs[i] {
			t.Errorf("layer %d: diff_id %s digest %s, want %s", i, l.DiffID, l.Digest, bb.DiffIDs[i])
		}
	}
	if out := e.dockerOK("history", "--format", "{{.ID}}", bb.RepoTag()); !strings.HasPrefix(out, bb.ID.Encoded()[:12]) {
		t.Errorf("docker history: %q", out)
	}
}
