package testdata

import (
	"context"
	"fmt"
	"strconv"
)

// FilesTreeFile is the path of file i of a Files image's tree: 50 files per
// leaf directory, 20 leaf directories per parent.
func FilesTreeFile(i int) string {
	d := i / bigFilesPerDir
	return fmt.Sprintf("%s/d%03d/d%02d/f%02d.dat", BigTree, d/bigDirsPerLevel, d%bigDirsPerLevel, i%bigFilesPerDir)
}

func filesSpec(in *busyboxInput, n int) imageSpec {
	tree := []entry{dir(BigTree, 0o755)}
	for i := 0; i < n; i++ {
		p := FilesTreeFile(i)
		if i%(bigFilesPerDir*bigDirsPerLevel) == 0 {
			tree = append(tree, dir(p[:len(BigTree)+5], 0o755))
		}
		if i%bigFilesPerDir == 0 {
			tree = append(tree, dir(p[:len(BigTree)+9], 0o755))
		}
		tree = append(tree, file(p, 0o644, prngContent("files", uint64(i), smallSize("files", i))))
	}
	return imageSpec{
		name: "fusebox-files-" + strconv.Itoa(n),
		tag:  "latest",
		env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		cmd:  []string{"sh"},
		layers: []layer{
			{entries: busyboxBase(in), createdBy: "/bin/sh -c #(nop) ADD file:%s in / "},
			{entries: tree, createdBy: "/bin/sh -c #(nop) COPY dir:%s in /tree "},
		},
		lowerDirs: true,
	}
}

// BuildFiles returns, from cacheDir, building it there first if needed, an
// image of n small files for measuring how costs grow with image size (the
// diff and commit figures compare n = 1,000 and 100,000): the busybox base
// and one layer with n files of 1–8 KiB (FilesTreeFile(i)), tagged
// fusebox-files-N:latest, as a docker-archive and overlayfs lower dirs.
func BuildFiles(ctx context.Context, cacheDir string, n int) (*Image, error) {
	if n < 0 {
		return nil, fmt.Errorf("files image of %d files: %w", n, errNegative)
	}
	in, err := readBusybox()
	if err != nil {
		return nil, err
	}
	return cached(ctx, cacheDir, cacheKey("files"+strconv.Itoa(n), in.sum), func(ctx context.Context, dir string) (*Image, error) {
		return build(dir, filesSpec(in, n))
	})
}
