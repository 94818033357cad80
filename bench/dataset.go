package bench

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// datasetFormat changes whenever the builder would write different bytes for
// the same Spec, so that old caches are rebuilt rather than trusted.
const datasetFormat = 1

// stampName marks a finished cache entry; a directory without it is a build
// that was interrupted and is thrown away.
const stampName = "COMPLETE"

// Spec sizes the data set. The same Spec always gives the same bytes.
type Spec struct {
	SmallFiles  int   `json:"small_files"`  // files of 1–8 KiB in the tree layer
	SmallDirs   int   `json:"small_dirs"`   // leaf directories they are spread over
	BigSize     int64 `json:"big_size"`     // the big incompressible file
	MidSize     int64 `json:"mid_size"`     // the second incompressible file
	Changed     int   `json:"changed"`      // files the change layer rewrites, and as many it deletes
	SourceFiles int   `json:"source_files"` // files in the source-like tarball for untar
	Creates     int   `json:"creates"`      // small files created then deleted
	RandomIOs   int   `json:"random_ios"`   // 4 KiB random reads per run
	DiffSmall   int   `json:"diff_small"`   // files in the small image of the diff figures
	DiffLarge   int   `json:"diff_large"`   // files in the large one
}

// FullSpec is the data set of the issue: 20,000 small files in 400
// directories, 1 GiB and 256 MiB incompressible files, 100 changed and 100
// deleted files.
func FullSpec() Spec {
	return Spec{SmallFiles: 20000, SmallDirs: 400, BigSize: 1 << 30, MidSize: 256 << 20, Changed: 100,
		SourceFiles: 5000, Creates: 10000, RandomIOs: 8192, DiffSmall: 1000, DiffLarge: 100000}
}

// QuickSpec is a scaled-down data set for the smoke run.
func QuickSpec() Spec {
	return Spec{SmallFiles: 2000, SmallDirs: 40, BigSize: 64 << 20, MidSize: 16 << 20, Changed: 100,
		SourceFiles: 300, Creates: 500, RandomIOs: 2048, DiffSmall: 1000, DiffLarge: 3000}
}

func (s Spec) validate() error {
	switch {
	case s.SmallDirs < 1 || s.SmallFiles < s.SmallDirs:
		return fmt.Errorf("spec: %d files in %d dirs: %w", s.SmallFiles, s.SmallDirs, ErrBadSpec)
	case s.SmallFiles < 4*s.Changed || s.Changed < 1:
		return fmt.Errorf("spec: %d changes need at least %d files: %w", s.Changed, 4*s.Changed, ErrBadSpec)
	case s.BigSize < 1<<20 || s.MidSize < 4096:
		return fmt.Errorf("spec: big files too small: %w", ErrBadSpec)
	}
	return nil
}

// ErrBadSpec is returned for a Spec the builder cannot honour.
var ErrBadSpec = fmt.Errorf("bad data set spec")

// Dataset is a built data set: overlayfs lower directories plus the extra
// inputs of the workloads. Paths inside the merged view are relative
// (no leading slash).
type Dataset struct {
	Dir    string   // the cache entry
	ID     string   // names the Spec and the builder's format
	Spec   Spec     //
	Layers []string // top first, as overlayfs's lowerdir wants them
	Base   string   // the busybox layer alone, for container start

	Big, Mid  string // the incompressible files
	Tree      string // the directory of small files
	SmallFile string // a small lower file that no upper layer touches
	SourceTar string // a source-like tarball (absolute path) for untar
}

// Layer directory names, bottom first.
var layerNames = []string{"0-base", "1-tree", "2-big", "3-changes", "4-top"}

// PrepareDataset returns the data set for spec under cacheDir, building it
// first when no finished copy is there. Progress goes to log.
func PrepareDataset(ctx context.Context, cacheDir string, spec Spec, log io.Writer) (*Dataset, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	bbSum, err := fileSHA256("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("data set needs /bin/busybox (busybox-static): %w", err)
	}
	specJSON, _ := json.Marshal(struct {
		Format  int
		Spec    Spec
		Busybox string
	}{datasetFormat, spec, bbSum})
	id := shortHash(string(specJSON))
	// The file count in the name lets a rebuild drop stale copies of the
	// same size class (a quick and a full data set live side by side).
	prefix := fmt.Sprintf("data-%d-", spec.SmallFiles)
	dir := filepath.Join(cacheDir, prefix+id)
	ds := &Dataset{Dir: dir, ID: id, Spec: spec}
	for i := len(layerNames) - 1; i >= 0; i-- {
		ds.Layers = append(ds.Layers, filepath.Join(dir, "layers", layerNames[i]))
	}
	ds.Base = filepath.Join(dir, "layers", layerNames[0])
	ds.Big, ds.Mid, ds.Tree = "data/big", "data/mid", "data/tree"
	ds.SmallFile = path.Join(ds.Tree, smallFilePath(spec, 1))
	ds.SourceTar = filepath.Join(dir, "source.tar")

	if _, err := os.Stat(filepath.Join(dir, stampName)); err == nil {
		return ds, nil
	}
	if stale, _ := filepath.Glob(filepath.Join(cacheDir, prefix+"*")); len(stale) > 0 {
		for _, d := range stale {
			fmt.Fprintf(log, "removing stale data set %s\n", d)
			if err := os.RemoveAll(d); err != nil {
				return nil, fmt.Errorf("data set: %w", err)
			}
		}
	}
	fmt.Fprintf(log, "building data set %s in %s (once; later runs reuse it)\n", id, dir)
	start := time.Now()
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("data set: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("data set: %w", err)
	}
	if err := buildDataset(ctx, tmp, spec); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("build data set: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, stampName), append(specJSON, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("data set: %w", err)
	}
	unix.Sync()
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("data set: %w", err)
	}
	fmt.Fprintf(log, "data set built in %s\n", time.Since(start).Round(time.Millisecond))
	return ds, nil
}

func buildDataset(ctx context.Context, dir string, spec Spec) error {
	l := func(i int) string { return filepath.Join(dir, "layers", layerNames[i]) }
	steps := []func() error{
		func() error { return buildBase(l(0)) },
		func() error { return buildTree(ctx, l(1), spec) },
		func() error {
			if err := writeRandomFile(filepath.Join(l(2), "data/big"), "big", spec.BigSize); err != nil {
				return err
			}
			return writeRandomFile(filepath.Join(l(2), "data/mid"), "mid", spec.MidSize)
		},
		func() error { return buildChanges(l(3), spec) },
		func() error { return buildTop(l(4)) },
		func() error { return writeSourceTar(filepath.Join(dir, "source.tar"), spec.SourceFiles) },
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// buildBase writes a minimal root file system: static busybox and its
// applet links, the directories runc needs, and passwd/group.
func buildBase(dir string) error {
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "root", "tmp", "var", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := copyFile("/bin/busybox", filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		return err
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// smallFilePath is where small file i of the tree lives, relative to the tree.
func smallFilePath(spec Spec, i int) string {
	d := i % spec.SmallDirs
	return fmt.Sprintf("d%02d/d%02d/f%05d", d/20, d%20, i)
}

// changeIndexes returns the tree files the change layer rewrites and deletes.
// File 1 is in neither list: it is the small lower file workloads touch.
func changeIndexes(spec Spec) (modified, deleted []int) {
	step := spec.SmallFiles / (2 * spec.Changed)
	for k := 0; k < spec.Changed; k++ {
		modified = append(modified, 2*k*step+2)
		deleted = append(deleted, (2*k+1)*step+2)
	}
	return modified, deleted
}

func buildTree(ctx context.Context, dir string, spec Spec) error {
	root := filepath.Join(dir, "data/tree")
	for i := 0; i < spec.SmallFiles; i++ {
		if i%1000 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rel := smallFilePath(spec, i)
		if err := writeSmallFile(filepath.Join(root, rel), "tree/"+rel); err != nil {
			return err
		}
	}
	return nil
}

func buildChanges(dir string, spec Spec) error {
	root := filepath.Join(dir, "data/tree")
	modified, deleted := changeIndexes(spec)
	for _, i := range modified {
		rel := smallFilePath(spec, i)
		if err := writeSmallFile(filepath.Join(root, rel), "changed/"+rel); err != nil {
			return err
		}
	}
	for _, i := range deleted {
		p := filepath.Join(root, smallFilePath(spec, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		// overlayfs's whiteout: a character device 0/0.
		if err := unix.Mknod(p, unix.S_IFCHR|0o000, 0); err != nil {
			return fmt.Errorf("whiteout %s: %w", p, err)
		}
	}
	return nil
}

func buildTop(dir string) error {
	files := map[string]string{
		"etc/hostname":         "fusebox-bench\n",
		"data/top/README":      "The top layer of fusebox's benchmark data set.\n",
		"data/top/config.json": `{"layer":"top","files":3}` + "\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// seeded returns a deterministic random stream named by seed.
func seeded(seed string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte("fusebox-bench/" + seed)))
}

// writeSmallFile writes 1–8 KiB of random bytes named by seed.
func writeSmallFile(p, seed string) error {
	rng := seeded(seed)
	size := 1024 + int(rand.New(rng).Uint64N(7*1024+1))
	buf := make([]byte, size)
	rng.Read(buf)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, buf, 0o644)
}

// writeRandomFile writes size incompressible bytes named by seed.
func writeRandomFile(p, seed string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, seeded(seed), size); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	return f.Close()
}

// sourceWords make generated sources look like text, so that the untar
// workload moves source-like sizes rather than random bytes.
var sourceWords = strings.Fields(`func return if else for range struct interface package import
	var const type map chan go defer select case switch default break continue nil err ctx
	buf len cap make new append copy string int byte error bool true false fmt os io path`)

// writeSourceTar writes a tarball of n text files in a source-like layout
// (module/package/file), with fixed times so that it is the same every time.
func writeSourceTar(p string, n int) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(seeded("source"))
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		dir := fmt.Sprintf("src/mod%02d/pkg%02d", i%13, (i/13)%17)
		for d := dir; d != "." && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			hdr := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		}
		ext := []string{".go", ".c", ".h", ".md"}[i%4]
		var b strings.Builder
		size := 200 + int(rng.Uint64N(12000))
		for b.Len() < size {
			b.WriteString(sourceWords[rng.IntN(len(sourceWords))])
			if rng.IntN(9) == 0 {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s/file%05d%s", dir, i, ext), Mode: 0o644,
			Size: int64(b.Len()), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, b.String()); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// DiffTree returns a layer directory holding n small files in directories
// of 100 (the images of the diff and commit figures), building it once.
func (ds *Dataset) DiffTree(ctx context.Context, n int) (string, error) {
	dir := filepath.Join(ds.Dir, fmt.Sprintf("difftree-%d", n))
	if _, err := os.Stat(filepath.Join(dir, stampName)); err == nil {
		return filepath.Join(dir, "root"), nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	os.RemoveAll(dir)
	for i := 0; i < n; i++ {
		if i%1000 == 0 && ctx.Err() != nil {
			os.RemoveAll(tmp)
			return "", ctx.Err()
		}
		p := filepath.Join(tmp, "root", fmt.Sprintf("data/d%04d/f%03d", i/100, i%100))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", fmt.Errorf("diff tree: %w", err)
			}
		}
		if err := os.WriteFile(p, fmt.Appendf(nil, "file %d of %d\n", i, n), 0o644); err != nil {
			return "", fmt.Errorf("diff tree: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, stampName), nil, 0o644); err != nil {
		return "", fmt.Errorf("diff tree: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("diff tree: %w", err)
	}
	return filepath.Join(dir, "root"), nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
