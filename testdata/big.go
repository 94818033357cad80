package testdata

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
)

// The big image's shape, which the benchmarks report against.
const (
	BigFile         = "data/big-1g.bin"   // 1 GiB of incompressible bytes
	BigFileSize     = 1 << 30             //
	MediumFile      = "data/big-256m.bin" // 256 MiB of incompressible bytes
	MediumFileSize  = 256 << 20           //
	BigTree         = "tree"              // the small-file tree's root
	BigTreeDirs     = 400                 // leaf directories: tree/dNN/dNN
	BigTreeFiles    = 20000               // files of 1–8 KiB, 50 per leaf directory
	BigModified     = 100                 // tree files that layer 4 rewrites
	BigDeleted      = 100                 // tree files that layer 4 deletes (whiteouts)
	bigFilesPerDir  = BigTreeFiles / BigTreeDirs
	bigDirsPerLevel = 20
)

// prng returns incompressible, reproducible bytes: ChaCha8 seeded from a
// label and a number.
func prng(label string, n uint64) io.Reader {
	var seed [32]byte
	copy(seed[:24], label)
	binary.LittleEndian.PutUint64(seed[24:], n)
	return rand.NewChaCha8(seed)
}

func prngContent(label string, n uint64, size int64) *content {
	return &content{size: size, open: func() (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(prng(label, n), size)), nil
	}}
}

// BigTreeFile is the path of small file i (0 ≤ i < BigTreeFiles).
func BigTreeFile(i int) string {
	d := i / bigFilesPerDir
	return fmt.Sprintf("%s/d%02d/d%02d/f%02d.dat", BigTree, d/bigDirsPerLevel, d%bigDirsPerLevel, i%bigFilesPerDir)
}

// BigModifiedFile and BigDeletedFile are the paths layer 4 rewrites and
// deletes (0 ≤ i < 100): spread over the whole tree, never the same file.
func BigModifiedFile(i int) string { return BigTreeFile(i * (BigTreeFiles / BigModified)) }
func BigDeletedFile(i int) string  { return BigTreeFile(i*(BigTreeFiles/BigDeleted) + 1) }

func smallSize(label string, i int) int64 {
	var b [2]byte
	io.ReadFull(prng(label+"-size", uint64(i)), b[:])
	return 1024 + int64(binary.LittleEndian.Uint16(b[:]))%(7*1024+1)
}

func bigSpec(in *busyboxInput) imageSpec {
	files := []entry{
		dir("data", 0o755),
		file(BigFile, 0o644, prngContent("big-1g", 0, BigFileSize)),
		file(MediumFile, 0o644, prngContent("big-256m", 0, MediumFileSize)),
	}
	tree := []entry{dir(BigTree, 0o755)}
	for a := 0; a < bigDirsPerLevel; a++ {
		tree = append(tree, dir(fmt.Sprintf("%s/d%02d", BigTree, a), 0o755))
		for b := 0; b < bigDirsPerLevel; b++ {
			tree = append(tree, dir(fmt.Sprintf("%s/d%02d/d%02d", BigTree, a, b), 0o755))
		}
	}
	for i := 0; i < BigTreeFiles; i++ {
		tree = append(tree, file(BigTreeFile(i), 0o644, prngContent("tree", uint64(i), smallSize("tree", i))))
	}
	changes := []entry{}
	seen := map[string]bool{}
	addParents := func(p string) {
		for _, d := range []string{BigTree, p[:len(BigTree)+4], p[:len(BigTree)+8]} {
			if !seen[d] {
				seen[d] = true
				changes = append(changes, dir(d, 0o755))
			}
		}
	}
	for i := 0; i < BigModified; i++ {
		p := BigModifiedFile(i)
		addParents(p)
		changes = append(changes, file(p, 0o644, prngContent("modified", uint64(i), smallSize("modified", i))))
	}
	for i := 0; i < BigDeleted; i++ {
		p := BigDeletedFile(i)
		addParents(p)
		changes = append(changes, whiteout(p))
	}
	top := []entry{
		dir("etc", 0o755),
		text("etc/bench-image", 0o644, "fusebox big benchmark image\n"),
	}
	return imageSpec{
		name: "fusebox-big",
		tag:  "latest",
		env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		cmd:  []string{"sh"},
		layers: []layer{
			{entries: busyboxBase(in), createdBy: "/bin/sh -c #(nop) ADD file:%s in / "},
			{entries: files, createdBy: "/bin/sh -c #(nop) COPY dir:%s in /data "},
			{entries: tree, createdBy: "/bin/sh -c #(nop) COPY dir:%s in /tree "},
			{entries: changes, createdBy: "/bin/sh -c mutate-tree --modify 100 --delete 100"},
			{entries: top, createdBy: "/bin/sh -c echo fusebox big benchmark image > /etc/bench-image"},
		},
		lowerDirs: true,
	}
}

// BuildBig returns the benchmarks' image from cacheDir, building it there
// first if needed (about 2.6 GB of disk, a minute or two): five layers —
// the busybox base; a 1 GiB and a 256 MiB incompressible file; a tree of
// 20,000 files of 1–8 KiB in 400 leaf directories; 100 of those rewritten
// and 100 deleted; a small top layer — as a docker-archive (fusebox-big:latest)
// and as overlayfs lower dirs. It has no OCI form and keeps no layer tars.
func BuildBig(ctx context.Context, cacheDir string) (*Image, error) {
	in, err := readBusybox()
	if err != nil {
		return nil, err
	}
	return cached(ctx, cacheDir, cacheKey("big", in.sum), func(ctx context.Context, dir string) (*Image, error) {
		return build(dir, bigSpec(in))
	})
}
