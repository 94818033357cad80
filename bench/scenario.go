package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fusebox/fusebox/launcher"
)

// Scenarios returns the figures that are not one workload on one mount:
// container start, diff and commit against image size and against a naive
// tree walk, and daemon memory. The fusebox side of each is missing until
// the fusebox binary has the commands it needs.
func Scenarios(cfg Config, ds *Dataset, scratch string) []Case {
	cli := Fusebox{Path: cfg.Fusebox, Server: cfg.server}
	images := &imageLoader{cli: cli, cacheDir: ds.Dir}
	anchors := map[string]Backend{}
	for _, b := range Backends(cfg, ds) {
		if b.Name() == KernelOverlayName || b.Name() == FuseOverlayfsName {
			anchors[b.Name()] = b
		}
	}
	var cases []Case
	cases = append(cases, runcStart(ds, scratch, true), runcStart(ds, scratch, false), fuseboxStart(cli, images, ds, ""),
		fuseboxStart(cli, images, ds, "none"), fuseboxStart(cli, images, ds, "host"))
	for _, n := range []int{ds.Spec.DiffSmall, ds.Spec.DiffLarge} {
		name := fmt.Sprintf("diff, 10 changes, %s-file image", count(n))
		for _, an := range []string{KernelOverlayName, FuseOverlayfsName} {
			cases = append(cases, naiveDiff(name, anchors[an], ds, scratch, n, false))
		}
		cases = append(cases, fuseboxDiff(name, cli, images, ds, n), fuseboxDiffRunning(cli, images, ds, n))
	}
	commitName := fmt.Sprintf("commit 10 MiB of changes, %s image", sizeText(ds.Spec.BigSize+ds.Spec.MidSize))
	for _, an := range []string{KernelOverlayName, FuseOverlayfsName} {
		cases = append(cases, naiveDiff(commitName, anchors[an], ds, scratch, 0, true))
	}
	cases = append(cases, fuseboxCommit(commitName, cli, images, ds), fuseboxCommitDisk(cli, images, ds))
	cases = append(cases, fuseboxMemory(cli, images, ds)...)
	return cases
}

const startName = "container start: run --rm IMAGE true"

// runcStart is the anchor of container start: mount the busybox layer with
// kernel overlayfs and a fresh upper, `runc run` true in it, unmount. The
// time covers all three, as fusebox's run --rm does. With seccomp, the
// container loads the filter fusebox's containers load (Docker's default
// profile: libseccomp builds it in the container's init, tens of ms on this
// machine), which makes it the anchor; without, it is `runc spec`'s bare
// default, kept as a second row to show what the filter costs.
func runcStart(ds *Dataset, scratch string, seccomp bool) Case {
	name := "runc-seccomp"
	c := Case{Workload: startName, Backend: KernelOverlayName, Unit: "ms", Better: LowerIsBetter,
		Note: "runc run of the busybox layer on kernel overlayfs with Docker's default seccomp profile, mount and unmount included, warm"}
	if !seccomp {
		name = "runc"
		c.Backend = KernelOverlayName + ", runc spec without seccomp"
		c.Note = "the same with runc spec's defaults: no seccomp filter"
	}
	dir := filepath.Join(scratch, name)
	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(dir, "rootfs")
	c.Available = func(ctx context.Context) error {
		if _, err := exec.LookPath("runc"); err != nil {
			return missingf("runc is not installed")
		}
		return KernelOverlay{}.Available(ctx)
	}
	c.Setup = func(ctx context.Context) error {
		for _, d := range []string{bundle, rootfs} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		if out, err := exec.CommandContext(ctx, "runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
			return fmt.Errorf("runc spec: %w: %s", err, bytes.TrimSpace(out))
		}
		p := filepath.Join(bundle, "config.json")
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var spec map[string]any
		if err := json.Unmarshal(data, &spec); err != nil {
			return fmt.Errorf("runc spec: %w", err)
		}
		proc, _ := spec["process"].(map[string]any)
		root, _ := spec["root"].(map[string]any)
		if proc == nil || root == nil {
			return fmt.Errorf("runc spec: no process or root")
		}
		proc["terminal"] = false
		proc["args"] = []string{"true"}
		root["path"] = rootfs
		root["readonly"] = false
		if seccomp {
			filter, err := launcher.DefaultSeccomp()
			if err != nil {
				return err
			}
			linux, _ := spec["linux"].(map[string]any)
			if linux == nil {
				return fmt.Errorf("runc spec: no linux section")
			}
			linux["seccomp"] = filter
		}
		data, _ = json.MarshalIndent(spec, "", "  ")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		// One unmeasured start, so that runc and busybox are in the cache.
		_, err = c.Run(ctx, -1)
		return err
	}
	c.Run = func(ctx context.Context, i int) (float64, error) {
		upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
		for _, d := range []string{upper, work} {
			if err := os.RemoveAll(d); err != nil {
				return 0, err
			}
			if err := os.Mkdir(d, 0o755); err != nil {
				return 0, err
			}
		}
		id := fmt.Sprintf("fusebox-bench-%d-%d", os.Getpid(), i+1)
		start := time.Now()
		if err := (KernelOverlay{}).Mount(ctx, []string{ds.Base}, upper, work, rootfs); err != nil {
			return 0, err
		}
		cmd := exec.CommandContext(ctx, "runc", "run", "--bundle", bundle, id)
		out, err := cmd.CombinedOutput()
		uerr := unmount(rootfs)
		ms := since(start, "ms")
		if err != nil {
			exec.Command("runc", "delete", "-f", id).Run()
			return 0, fmt.Errorf("runc run: %w: %s", err, bytes.TrimSpace(out))
		}
		return ms, uerr
	}
	return c
}

// fuseboxStart is `fusebox run --rm IMAGE true`; with netMode, `--net
// netMode` too. The issue's figure is the default network (a bridge, as
// Docker's); none is the runc anchor's own setting (a netns with lo), host
// has no netns at all.
func fuseboxStart(cli Fusebox, images *imageLoader, ds *Dataset, netMode string) Case {
	var ref string
	c := Case{Workload: startName, Backend: "fusebox", Unit: "ms", Better: LowerIsBetter,
		Note: "fusebox run --rm of the busybox layer as an image, default network, daemon warm"}
	args := []string{"run", "--rm"}
	if netMode != "" {
		c.Backend += " --net=" + netMode
		c.Note = "the same with --net=" + netMode
		args = append(args, "--net="+netMode)
	}
	c.Available = func(ctx context.Context) error { return cli.Has(ctx, "run", "load") }
	c.Setup = func(ctx context.Context) (err error) {
		if ref, err = images.load(ctx, "busybox", []string{ds.Base}); err != nil {
			return err
		}
		_, err = cli.Run(ctx, append(args, ref, "true")...) // warms the daemon
		// The load's writes are still being written back for a second or
		// two, which slowed the first starts by up to 80 ms here: that is
		// the load's cost. The anchor's rootfs was written long before.
		syscall.Sync()
		return err
	}
	c.Run = func(ctx context.Context, i int) (float64, error) {
		start := time.Now()
		if _, err := cli.Run(ctx, append(args, ref, "true")...); err != nil {
			return 0, err
		}
		ms := since(start, "ms")
		return ms, replacedBinary(ctx, cli)
	}
	return c
}

// errReplaced says the daemon's binary was replaced while it ran, which
// makes libcontainer copy the whole binary for every container start.
var errReplaced = errors.New("the bench daemon's binary was replaced while it ran (rebuilt?): its container starts copy the binary and are not comparable")

// replacedBinary returns errReplaced when the harness's daemon runs a
// binary that is no longer on disk.
func replacedBinary(ctx context.Context, cli Fusebox) error {
	if cli.Server == nil {
		return nil
	}
	d, err := cli.Server.Daemon(ctx)
	if err != nil {
		return err
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", d.PID())); err == nil && strings.HasSuffix(exe, " (deleted)") {
		return errReplaced
	}
	return nil
}

// change is one of the ten changes the diff figures make in a container.
type change struct{ op, path string }

var tenChanges = []change{
	{"add", "data/new0"}, {"add", "data/new1"}, {"add", "data/new2"}, {"add", "data/new3"},
	{"append", "data/d0000/f001"}, {"append", "data/d0001/f001"}, {"append", "data/d0002/f001"},
	{"delete", "data/d0003/f001"}, {"delete", "data/d0004/f001"}, {"chmod", "data/d0005/f001"},
}

// commitChanges are the 10 MiB of new files of the commit figure.
var commitChanges = func() []change {
	var cs []change
	for i := 0; i < 10; i++ {
		cs = append(cs, change{"add1m", fmt.Sprintf("data/commit%d", i)})
	}
	return cs
}()

func applyChanges(root string, cs []change) error {
	for _, c := range cs {
		p := filepath.Join(root, c.path)
		var err error
		switch c.op {
		case "add":
			err = os.WriteFile(p, []byte("new\n"), 0o644)
		case "add1m":
			buf := make([]byte, 1<<20)
			seeded(c.path).Read(buf)
			err = os.WriteFile(p, buf, 0o644)
		case "append":
			var f *os.File
			if f, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0); err == nil {
				_, err = f.WriteString("more\n")
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		case "delete":
			err = os.Remove(p)
		case "chmod":
			err = os.Chmod(p, 0o600)
		}
		if err != nil {
			return fmt.Errorf("change %s %s: %w", c.op, c.path, err)
		}
	}
	return nil
}

// shellChanges is applyChanges as a busybox sh script, for containers.
func shellChanges(cs []change) string {
	var b strings.Builder
	for _, c := range cs {
		p := "/" + c.path
		switch c.op {
		case "add":
			fmt.Fprintf(&b, "echo new > %s && ", p)
		case "add1m":
			fmt.Fprintf(&b, "head -c 1048576 /dev/urandom > %s && ", p)
		case "append":
			fmt.Fprintf(&b, "echo more >> %s && ", p)
		case "delete":
			fmt.Fprintf(&b, "rm %s && ", p)
		case "chmod":
			fmt.Fprintf(&b, "chmod 600 %s && ", p)
		}
	}
	b.WriteString("true")
	return b.String()
}

// naiveDiff measures what Docker's naive diff driver does on a union mount
// without a change journal: mount the container and its parent image, walk
// both trees whole and compare every entry. With commit set, it also writes
// the changes as a layer tar and hashes it, as a naive commit must; its
// image is then the big-file one, else a tree of n files.
func naiveDiff(name string, b Backend, ds *Dataset, scratch string, n int, commit bool) Case {
	c := Case{Workload: name, Backend: b.Name(), Unit: "ms", Better: LowerIsBetter, Available: b.Available,
		Note: "naive tree walk of container and parent mounts (Docker's naive diff), warm"}
	if commit {
		c.Note = "naive diff walk, then the changes tarred and hashed, warm"
	}
	dir := filepath.Join(scratch, fmt.Sprintf("naive-%s-%d-%t", chainKey([]string{b.Name()}), n, commit))
	cont, parent := filepath.Join(dir, "container"), filepath.Join(dir, "parent")
	var mounted []string
	c.Setup = func(ctx context.Context) error {
		layers := []string{ds.Layers[2], ds.Base} // 2-big over base
		cs := commitChanges
		if !commit {
			tree, err := ds.DiffTree(ctx, n)
			if err != nil {
				return err
			}
			layers, cs = []string{tree, ds.Base}, tenChanges
		}
		for _, m := range []string{cont, parent} {
			for _, d := range []string{"upper", "work", "mnt"} {
				if err := os.MkdirAll(filepath.Join(m, d), 0o755); err != nil {
					return err
				}
			}
			if err := b.Mount(ctx, layers, filepath.Join(m, "upper"), filepath.Join(m, "work"), filepath.Join(m, "mnt")); err != nil {
				return err
			}
			mounted = append(mounted, filepath.Join(m, "mnt"))
		}
		if err := applyChanges(filepath.Join(cont, "mnt"), cs); err != nil {
			return err
		}
		_, err := c.Run(ctx, -1) // warm-up
		return err
	}
	c.Run = func(ctx context.Context, i int) (float64, error) {
		start := time.Now()
		changes, err := naiveChanges(ctx, filepath.Join(cont, "mnt"), filepath.Join(parent, "mnt"))
		if err != nil {
			return 0, err
		}
		if commit {
			if err := naiveLayer(filepath.Join(cont, "mnt"), changes, filepath.Join(dir, "layer.tar")); err != nil {
				return 0, err
			}
		}
		ms := since(start, "ms")
		// The ten changes, plus directories whose times they changed.
		if len(changes) < 10 {
			return 0, fmt.Errorf("naive diff found %d changes, want at least 10", len(changes))
		}
		return ms, nil
	}
	c.Teardown = func(ctx context.Context) error {
		var first error
		for _, m := range mounted {
			if err := b.Unmount(ctx, m); err != nil && first == nil {
				first = err
			}
		}
		if err := removeScratch(dir); err != nil && first == nil {
			first = err
		}
		return first
	}
	return c
}

// entryInfo is what the naive diff compares of an entry.
type entryInfo struct {
	mode     fs.FileMode
	uid, gid uint32
	size     int64
	mtime    time.Time
}

type changeEntry struct {
	kind byte // 'A', 'C' or 'D'
	path string
}

func collect(root string) (map[string]entryInfo, error) {
	m := map[string]entryInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		m[rel] = entryInfo{fi.Mode(), st.Uid, st.Gid, fi.Size(), fi.ModTime()}
		return nil
	})
	return m, err
}

// naiveChanges walks both trees whole, in parallel, and compares them.
func naiveChanges(ctx context.Context, newRoot, oldRoot string) ([]changeEntry, error) {
	var wg sync.WaitGroup
	var newM, oldM map[string]entryInfo
	var newErr, oldErr error
	wg.Add(2)
	go func() { defer wg.Done(); newM, newErr = collect(newRoot) }()
	go func() { defer wg.Done(); oldM, oldErr = collect(oldRoot) }()
	wg.Wait()
	if newErr != nil || oldErr != nil {
		return nil, fmt.Errorf("naive diff: %v %v", newErr, oldErr)
	}
	var out []changeEntry
	for p, ni := range newM {
		if p == "." {
			continue
		}
		oi, ok := oldM[p]
		switch {
		case !ok:
			out = append(out, changeEntry{'A', p})
		case ni.mode != oi.mode || ni.uid != oi.uid || ni.gid != oi.gid || !ni.mtime.Equal(oi.mtime) ||
			(!ni.mode.IsDir() && ni.size != oi.size):
			out = append(out, changeEntry{'C', p})
		}
	}
	for p := range oldM {
		if _, ok := newM[p]; !ok {
			out = append(out, changeEntry{'D', p})
		}
	}
	return out, nil
}

// naiveLayer writes the changed files as a layer tar and hashes it.
func naiveLayer(root string, changes []changeEntry, dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(f, h))
	for _, c := range changes {
		if c.kind == 'D' {
			if err := tw.WriteHeader(&tar.Header{Name: filepath.Join(filepath.Dir(c.path), ".wh."+filepath.Base(c.path)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			continue
		}
		p := filepath.Join(root, c.path)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = c.path
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_ = h.Sum(nil)
	return f.Close()
}

func fuseboxDiff(name string, cli Fusebox, images *imageLoader, ds *Dataset, n int) Case {
	ctr := fmt.Sprintf("fusebox-bench-diff-%d-%d", n, os.Getpid())
	c := Case{Workload: name, Backend: "fusebox", Unit: "ms", Better: LowerIsBetter,
		Note: "fusebox diff of a stopped container, from the journal, warm"}
	c.Available = func(ctx context.Context) error { return cli.Has(ctx, "run", "diff", "rm", "load") }
	c.Setup = func(ctx context.Context) error {
		tree, err := ds.DiffTree(ctx, n)
		if err != nil {
			return err
		}
		ref, err := images.load(ctx, "diff"+strconv.Itoa(n), []string{tree, ds.Base})
		if err != nil {
			return err
		}
		if _, err := cli.Run(ctx, "run", "--name", ctr, ref, "sh", "-c", shellChanges(tenChanges)); err != nil {
			return err
		}
		_, err = c.Run(ctx, -1)
		return err
	}
	c.Run = timeDiff(cli, ctr)
	c.Teardown = func(ctx context.Context) error {
		if cli.Has(ctx, "rm") != nil {
			return nil
		}
		_, err := cli.Run(ctx, "rm", "-f", ctr)
		if err != nil && strings.Contains(err.Error(), "No such container") {
			return nil
		}
		return err
	}
	return c
}

// timeDiff is a run of `fusebox diff` on a container with the ten
// changes, in milliseconds; fewer lines than changes fail it.
func timeDiff(cli Fusebox, ctr string) func(ctx context.Context, i int) (float64, error) {
	return func(ctx context.Context, i int) (float64, error) {
		start := time.Now()
		out, err := cli.Run(ctx, "diff", ctr)
		ms := since(start, "ms")
		if err != nil {
			return 0, err
		}
		if got := strings.Count(out, "\n"); got < 10 {
			return 0, fmt.Errorf("fusebox diff printed %d lines, want at least 10", got)
		}
		return ms, nil
	}
}

func fuseboxCommit(name string, cli Fusebox, images *imageLoader, ds *Dataset) Case {
	ctr := fmt.Sprintf("fusebox-bench-commit-%d", os.Getpid())
	c := Case{Workload: name, Backend: "fusebox", Unit: "ms", Better: LowerIsBetter,
		Note: "fusebox commit of a stopped container with 10 new 1 MiB files"}
	c.Available = func(ctx context.Context) error { return cli.Has(ctx, "run", "commit", "rm", "rmi", "load") }
	c.Setup = func(ctx context.Context) error {
		ref, err := images.load(ctx, "big", []string{ds.Layers[2], ds.Base})
		if err != nil {
			return err
		}
		_, err = cli.Run(ctx, "run", "--name", ctr, ref, "sh", "-c", shellChanges(commitChanges))
		return err
	}
	c.Run = func(ctx context.Context, i int) (float64, error) {
		tag := fmt.Sprintf("fusebox-bench/commit:%d-%d", os.Getpid(), i+1)
		start := time.Now()
		_, err := cli.Run(ctx, "commit", ctr, tag)
		ms := since(start, "ms")
		if err != nil {
			return 0, err
		}
		if _, err := cli.Run(ctx, "rmi", tag); err != nil {
			return 0, err
		}
		return ms, nil
	}
	c.Teardown = func(ctx context.Context) error {
		if cli.Has(ctx, "rm") != nil {
			return nil
		}
		_, err := cli.Run(ctx, "rm", "-f", ctr)
		if err != nil && strings.Contains(err.Error(), "No such container") {
			return nil
		}
		return err
	}
	return c
}

// memoryContainers is how many containers the memory figures run at once.
const memoryContainers = 10

// memorySample is one measurement of the memory figures: the daemon with
// no container, then the daemon and each container's shim with
// memoryContainers containers running.
type memorySample struct {
	idleRSS          int64 // the daemon before the containers start
	daemon           procMemory
	shimRSS, shimPSS int64 // summed over the shims
	shims            int
}

// memorySampler takes the memory samples once per run index and hands
// them to every memory figure, so that the containers start once per run,
// not once per figure.
type memorySampler struct {
	cli    Fusebox
	images *imageLoader
	ds     *Dataset

	mu      sync.Mutex
	ref     string
	leader  int // the figure that takes the samples; the others replay them
	samples []memorySample
	err     error
}

// sample returns the i-th sample for figure fig (numbered from 1): the
// first figure to ask leads and measures; the others get its samples and
// as many runs.
func (s *memorySampler) sample(ctx context.Context, fig, i int) (memorySample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leader == 0 {
		s.leader = fig
	}
	if i < len(s.samples) {
		return s.samples[i], nil
	}
	if s.err != nil {
		return memorySample{}, s.err
	}
	if fig != s.leader {
		return memorySample{}, errNoMoreRuns
	}
	m, err := s.measure(ctx, i)
	if err != nil {
		s.err = err
		return m, err
	}
	s.samples = append(s.samples, m)
	return m, nil
}

func (s *memorySampler) measure(ctx context.Context, i int) (m memorySample, err error) {
	if s.ref == "" {
		if s.ref, err = s.images.load(ctx, "busybox", []string{s.ds.Base}); err != nil {
			return m, err
		}
	}
	if s.cli.Server == nil {
		return m, missingf("no fusebox daemon of the harness's own")
	}
	d, err := s.cli.Server.Daemon(ctx)
	if err != nil {
		return m, err
	}
	idle, err := readProcMemory(d.PID())
	if err != nil {
		return m, fmt.Errorf("bench daemon memory: %w", err)
	}
	m.idleRSS = idle.RSS
	var names []string
	defer func() {
		if len(names) == 0 {
			return
		}
		if _, rerr := s.cli.Run(context.WithoutCancel(ctx), append([]string{"rm", "-f"}, names...)...); rerr != nil && err == nil {
			err = rerr
		}
	}()
	for k := range memoryContainers {
		n := fmt.Sprintf("fusebox-bench-mem-%d-%d-%d", os.Getpid(), i+1, k)
		if _, err := s.cli.Run(ctx, "run", "-d", "--name", n, s.ref, "sleep", "600"); err != nil {
			return m, err
		}
		names = append(names, n)
	}
	if m.daemon, err = readProcMemory(d.PID()); err != nil {
		return m, fmt.Errorf("bench daemon memory: %w", err)
	}
	kids, err := containerShims(d)
	if err != nil {
		return m, err
	}
	for _, pid := range kids {
		pm, err := readProcMemory(pid)
		if err != nil {
			continue // gone meanwhile: not a running container's shim
		}
		m.shimRSS += pm.RSS
		m.shimPSS += pm.PSS
		m.shims++
	}
	if m.shims != memoryContainers {
		return m, fmt.Errorf("found %d shims of the bench daemon, want %d", m.shims, memoryContainers)
	}
	return m, nil
}

// fuseboxMemory measures what containers cost in memory with ten of one
// image running, each with its own mount and shim: the daemon's resident
// and proportional set sizes, its growth per container, and each shim's
// sizes. The proportional set size shares pages among the processes that
// map them (the shims are one binary), so it is what a container adds.
func fuseboxMemory(cli Fusebox, images *imageLoader, ds *Dataset) []Case {
	s := &memorySampler{cli: cli, images: images, ds: ds}
	const mib = 1 << 20
	figures := []struct {
		name, note string
		value      func(m memorySample) float64
	}{
		{"daemon memory, 10 containers of one image", "VmRSS of the bench's fusebox daemon with 10 `run -d` containers of the busybox image",
			func(m memorySample) float64 { return float64(m.daemon.RSS) / mib }},
		{"daemon memory, 10 containers of one image, PSS", "Pss of the daemon (smaps_rollup), same 10 containers",
			func(m memorySample) float64 { return float64(m.daemon.PSS) / mib }},
		{"memory per container: daemon growth", "(daemon VmRSS with 10 containers − before them) / 10",
			func(m memorySample) float64 { return float64(m.daemon.RSS-m.idleRSS) / memoryContainers / mib }},
		{"memory per container: shim RSS", "VmRSS of the 10 shims / 10",
			func(m memorySample) float64 { return float64(m.shimRSS) / float64(m.shims) / mib }},
		{"memory per container: shim PSS", "Pss of the 10 shims / 10 (pages they share counted once)",
			func(m memorySample) float64 { return float64(m.shimPSS) / float64(m.shims) / mib }},
	}
	var cases []Case
	for k, f := range figures {
		c := Case{Workload: f.name, Backend: "fusebox", Unit: "MiB", Better: LowerIsBetter, Note: f.note}
		c.Available = func(ctx context.Context) error { return cli.Has(ctx, "run", "rm", "load") }
		c.Run = func(ctx context.Context, i int) (float64, error) {
			m, err := s.sample(ctx, k+1, i)
			if err != nil {
				return 0, err
			}
			return f.value(m), nil
		}
		cases = append(cases, c)
	}
	return cases
}

// containerShims lists the shims of the daemon's containers: its children
// that wrote their process ID in a container's state directory. The spare
// shim the daemon keeps for the next container has none yet.
func containerShims(d *Daemon) ([]int, error) {
	kids, err := childPIDs(d.PID())
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(d.Root, "containers", "*", launcher.PidFile))
	if err != nil {
		return nil, err
	}
	written := map[int]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			written[pid] = true
		}
	}
	var out []int
	for _, pid := range kids {
		if written[pid] {
			out = append(out, pid)
		}
	}
	return out, nil
}
