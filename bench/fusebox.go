package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Fusebox drives the fusebox command line for the figures that need the
// daemon (image mounts, container start, diff, commit, memory). Commands
// that the binary does not have yet make those figures missing, with the
// command named, rather than failing the run.
type Fusebox struct {
	// Path is the fusebox executable; empty means none.
	Path string
	// Server, when set, is the daemon every command goes to (its --root
	// and -H come before the verb); nil means the CLI's defaults.
	Server *Server
}

// Has returns nil when every verb is a command of the binary, else an error
// wrapping ErrMissing naming the first that is not.
func (f Fusebox) Has(ctx context.Context, verbs ...string) error {
	if f.Path == "" {
		return missingf("no fusebox executable given")
	}
	for _, v := range verbs {
		cmd := exec.CommandContext(ctx, f.Path, append(strings.Fields(v), "--help")...)
		if out, err := cmd.CombinedOutput(); err != nil || bytes.Contains(out, []byte("unknown command")) {
			return missingf("fusebox has no `%s` command yet", v)
		}
	}
	return nil
}

// Run runs fusebox with args and returns its standard output; the error
// carries its standard error.
func (f Fusebox) Run(ctx context.Context, args ...string) (string, error) {
	if f.Server != nil {
		d, err := f.Server.Daemon(ctx)
		if err != nil {
			return "", err
		}
		args = append([]string{"--root", d.Root, "-H", d.Host}, args...)
	}
	cmd := exec.CommandContext(ctx, f.Path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("fusebox %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// imageLoader turns layer chains into images in fusebox's store, once per
// chain and harness run.
type imageLoader struct {
	cli      Fusebox
	cacheDir string

	mu     sync.Mutex
	loaded map[string]string // chain key → image reference
}

// load returns the reference of an image made of layers (top first),
// writing its docker-archive under the cache dir once and loading it.
func (l *imageLoader) load(ctx context.Context, name string, layers []string) (string, error) {
	key := chainKey(layers)
	l.mu.Lock()
	defer l.mu.Unlock()
	if ref, ok := l.loaded[key]; ok {
		return ref, nil
	}
	ref := fmt.Sprintf("fusebox-bench/%s:%s", name, key)
	dir := filepath.Join(l.cacheDir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	archive := filepath.Join(dir, key+".tar")
	if _, err := os.Stat(archive); err != nil {
		if err := WriteImageArchive(ctx, archive, ref, layers); err != nil {
			return "", err
		}
	}
	if _, err := l.cli.Run(ctx, "load", "-i", archive); err != nil {
		return "", err
	}
	if l.loaded == nil {
		l.loaded = map[string]string{}
	}
	l.loaded[key] = ref
	return ref, nil
}

// ImageMount is fusebox serving the data set's layers from its store:
// the layers are loaded as an image, then `fusebox mount --rw IMAGE DIR`
// (without --rw while the command lacks it: the write workloads then fail
// and say so) and `fusebox umount DIR`. Upper and work are the daemon's own.
type ImageMount struct {
	CLI      Fusebox
	CacheDir string

	once   sync.Once
	loader *imageLoader
	rwOnce sync.Once
	rw     bool // the mount command has --rw
}

var (
	_ Backend   = (*ImageMount)(nil)
	_ Preparer  = (*ImageMount)(nil)
	_ Describer = (*ImageMount)(nil)
)

func (m *ImageMount) Name() string     { return "fusebox image mount" }
func (m *ImageMount) Describe() string { return "fusebox mount --rw IMAGE DIR, layers from the store" }

func (m *ImageMount) Available(ctx context.Context) error {
	return m.CLI.Has(ctx, "mount", "umount", "load")
}

func (m *ImageMount) images() *imageLoader {
	m.once.Do(func() { m.loader = &imageLoader{cli: m.CLI, cacheDir: m.CacheDir} })
	return m.loader
}

func (m *ImageMount) Prepare(ctx context.Context, layers []string) error {
	_, err := m.images().load(ctx, "data", layers)
	return err
}

func (m *ImageMount) Mount(ctx context.Context, layers []string, upper, work, target string) error {
	ref, err := m.images().load(ctx, "data", layers)
	if err != nil {
		return err
	}
	m.rwOnce.Do(func() {
		help, _ := m.CLI.Run(ctx, "mount", "--help")
		m.rw = strings.Contains(help, "--rw")
	})
	args := []string{"mount", ref, target}
	if m.rw {
		args = []string{"mount", "--rw", ref, target}
	}
	if _, err := m.CLI.Run(ctx, args...); err != nil {
		return err
	}
	// The daemon serves the mount; wait until the kernel shows it.
	return waitMounted(ctx, target, 30*time.Second, nil)
}

func (m *ImageMount) Unmount(ctx context.Context, target string) error {
	_, err := m.CLI.Run(ctx, "umount", target)
	if ok, _ := isMountPoint(target); ok {
		// The daemon did not let go: do not leave the mount behind.
		if uerr := unmount(target); uerr != nil && err == nil {
			err = uerr
		}
	}
	return err
}
