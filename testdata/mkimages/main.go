// Command mkimages builds fusebox's test images into the test cache and
// prints where they are: `make testimages`, or `go run ./testdata/mkimages
// [-big] [-debian=false] [-files 1000,100000]`. Tests build the same images on demand; running
// this first only moves the wait out of the test run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/fusebox/fusebox/testdata"
)

func main() {
	big := flag.Bool("big", false, "also build the benchmarks' big image (about 2.6 GB)")
	debian := flag.Bool("debian", true, "also build the Debian minbase image with debootstrap (needs network)")
	files := flag.String("files", "", "also build images of N small files, comma-separated counts (e.g. 1000,100000)")
	flag.Parse()
	if err := run(context.Background(), *big, *debian, *files); err != nil {
		fmt.Fprintln(os.Stderr, "mkimages:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, big, debian bool, files string) error {
	dir, err := testdata.CacheDir()
	if err != nil {
		return err
	}
	fmt.Println("cache:", dir)
	builds := []struct {
		name string
		on   bool
		fn   func(context.Context, string) (*testdata.Image, error)
	}{
		{"busybox", true, testdata.BuildBusybox},
		{"debian", debian, testdata.BuildDebian},
		{"big", big, testdata.BuildBig},
	}
	for _, f := range strings.Split(files, ",") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("-files %q: %w", f, err)
		}
		builds = append(builds, struct {
			name string
			on   bool
			fn   func(context.Context, string) (*testdata.Image, error)
		}{"files " + f, true, func(ctx context.Context, dir string) (*testdata.Image, error) {
			return testdata.BuildFiles(ctx, dir, n)
		}})
	}
	for _, b := range builds {
		if !b.on {
			continue
		}
		img, err := b.fn(ctx, dir)
		if errors.Is(err, testdata.ErrDebootstrap) {
			fmt.Fprintf(os.Stderr, "mkimages: %s image not built: %v\n", b.name, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s image: %w", b.name, err)
		}
		show(img)
	}
	return nil
}

func show(img *testdata.Image) {
	fmt.Printf("%s\n  id:             %s\n  docker-archive: %s\n", img.RepoTag(), img.ID, img.DockerArchive)
	if img.OCILayout != "" {
		fmt.Printf("  docker save 25: %s\n  oci layout:     %s\n  oci archive:    %s\n  oci manifest:   %s\n",
			img.DockerSave25, img.OCILayout, img.OCIArchive, img.ManifestDigest)
	}
	if len(img.LowerDirs) > 0 {
		fmt.Printf("  lowerdir=       %s\n", img.LowerDirOption())
	}
	ids := make([]string, len(img.DiffIDs))
	for i, d := range img.DiffIDs {
		ids[i] = d.String()
	}
	fmt.Printf("  diff_ids:       %s\n", strings.Join(ids, "\n                  "))
}
