package daemon

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/fusebox/fusebox/commit"
	"github.com/fusebox/fusebox/internal/testenv"
)

// benchContainer makes a daemon (not serving), imports an image of files
// empty files in 100 directories, and creates a container of it.
func benchContainer(b *testing.B, files int) (*Daemon, *ctr) {
	b.Helper()
	testenv.RequireFUSE(b, "image mounts")
	ctx := context.Background()
	root := b.TempDir()
	d, err := New(ctx, Config{Root: root, Host: "unix://" + filepath.Join(root, "s.sock"), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for i := range files {
			dir := fmt.Sprintf("d%03d", i%100)
			if i < 100 {
				tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755})
			}
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/f%06d", dir, i), Typeflag: tar.TypeReg, Mode: 0o644})
		}
		pw.CloseWithError(tw.Close())
	}()
	name := fmt.Sprintf("files%d", files)
	if _, err := d.ImportImage(ctx, pr, name, "latest", "", nil); err != nil {
		b.Fatal(err)
	}
	id, _, _, err := d.CreateContainer(ctx, "", &container.Config{Image: name, Cmd: []string{"true"}}, &container.HostConfig{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := d.containers.get(id)
	if err != nil {
		b.Fatal(err)
	}
	return d, c
}

// BenchmarkDiff is `diff` of 10 changes (5 files rewritten, 5 added) on
// images of 1,000 and 100,000 files, from the live journal as for a
// running container: its cost must not follow the image's size.
func BenchmarkDiff(b *testing.B) {
	for _, files := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			d, c := benchContainer(b, files)
			err := d.withRootfs(context.Background(), c, func(m *ImageMount) error {
				for i := range 5 {
					if err := os.WriteFile(filepath.Join(m.Target, fmt.Sprintf("d%03d/f%06d", i, i)), []byte("x"), 0o644); err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(m.Target, fmt.Sprintf("d050/new%d", i)), []byte("x"), 0o644); err != nil {
						return err
					}
				}
				b.ResetTimer()
				for b.Loop() {
					changes, err := m.Changes()
					if err != nil {
						return err
					}
					got, err := commit.Diff(context.Background(), commit.Mount{Merged: m.Target, Upper: m.Upper, Changes: changes})
					if err != nil {
						return err
					}
					if len(got) != 16 { // 10 files and their 6 parent dirs
						return fmt.Errorf("diff lists %d changes", len(got))
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkCommit10MB is commit of a stopped container that added 10 MB
// (one file) to an image of 100,000 files: mount, layer, image.
func BenchmarkCommit10MB(b *testing.B) {
	d, c := benchContainer(b, 100000)
	ctx := context.Background()
	err := d.withRootfs(ctx, c, func(m *ImageMount) error {
		buf := make([]byte, 10<<20)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		return os.WriteFile(filepath.Join(m.Target, "d001/big"), buf, 0o644)
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.CommitContainer(ctx, c, CommitOptions{Pause: true}); err != nil {
			b.Fatal(err)
		}
	}
}
