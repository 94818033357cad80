package commit_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/fusebox/fusebox/cas"
	"github.com/fusebox/fusebox/commit"
	"github.com/fusebox/fusebox/layerfs"
	"github.com/fusebox/fusebox/layerfs/layertest"
	"github.com/fusebox/fusebox/testdata"
)

// benchSizes are the image sizes the figures compare.
var benchSizes = []int{1000, 100000}

// filesCtr mounts a writable container over the n-file test image, from
// its lower dirs.
func filesCtr(b *testing.B, n int) *ctr {
	b.Helper()
	layertest.Skip(b)
	img := testdata.Files(b, n)
	var srcs []layerfs.Source
	for i := len(img.LowerDirs) - 1; i >= 0; i-- {
		s, err := layerfs.NewDirSource(img.LowerDirs[i])
		if err != nil {
			b.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	return newCtr(b, nil, "", srcs)
}

// tenChanges makes ten changes: four new files, four rewritten files, two
// deletions, in the same directories whatever the image's size, so that
// both images get the same change list.
func tenChanges(b *testing.B, c *ctr) {
	b.Helper()
	for i := 0; i < 4; i++ {
		if err := os.WriteFile(c.p(fmt.Sprintf("tmp/new%d", i)), []byte("new"), 0644); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		if err := os.WriteFile(c.p(testdata.FilesTreeFile(i)), []byte("rewritten"), 0644); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if err := os.Remove(c.p(testdata.FilesTreeFile(10 + i))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiff is `docker diff` with ten changes: its cost must not grow
// with the image (the issue asks for 1,000 and 100,000 files within 2x).
func BenchmarkDiff(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			c := filesCtr(b, n)
			tenChanges(b, c)
			ctx := context.Background()
			var got int
			for b.Loop() {
				d, err := commit.Diff(ctx, c.mount())
				if err != nil {
					b.Fatal(err)
				}
				got = len(d)
			}
			b.ReportMetric(float64(got), "changes")
		})
	}
}

// BenchmarkNaiveDiff walks the whole merged tree, as a diff without a
// journal must (Docker over fuse-overlayfs): the contrast to BenchmarkDiff.
func BenchmarkNaiveDiff(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			c := filesCtr(b, n)
			tenChanges(b, c)
			for b.Loop() {
				k := 0
				err := filepath.WalkDir(c.root, func(p string, de fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					if _, err := de.Info(); err != nil {
						return err
					}
					k++
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCommitLayer is the part of a commit that depends on the data:
// 10 MB of changes (ten 1 MiB files) written as a layer tar and streamed
// into a store. The rest (config, records) is a few small writes.
func BenchmarkCommitLayer(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			c := filesCtr(b, n)
			for i := 0; i < 10; i++ {
				data := bytes.Repeat([]byte{byte(i)}, 1<<20)
				data[0] = byte(i + 1) // distinct contents
				if err := os.WriteFile(c.p(fmt.Sprintf("tmp/mb%d", i)), data, 0644); err != nil {
					b.Fatal(err)
				}
			}
			s := openStore(b)
			ctx := context.Background()
			b.SetBytes(10 << 20)
			for b.Loop() {
				if _, err := commit.IngestLayer(ctx, s, c.mount(), cas.IngestOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
