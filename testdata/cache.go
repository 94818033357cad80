package testdata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Version is part of every cache key. Bump it whenever a builder changes
// what it writes, so that caches made by older code are rebuilt rather than
// trusted.
const Version = "1"

// CacheEnv names the environment variable that overrides the cache
// directory.
const CacheEnv = "FUSEBOX_TESTCACHE"

// CacheDir is where built images are kept: $FUSEBOX_TESTCACHE, or else
// testdata/cache under the module root (git-ignored).
func CacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return filepath.Abs(d)
	}
	// This file's directory is testdata/ in the module, wherever the test
	// binary runs from; with -trimpath fall back to the nearest go.mod.
	if _, src, _, ok := runtime.Caller(0); ok && filepath.IsAbs(src) {
		return filepath.Join(filepath.Dir(src), "cache"), nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "testdata", "cache"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find module root from %s: no go.mod; set %s", wd, CacheEnv)
		}
	}
}

// cacheKey names a build by everything its output depends on.
func cacheKey(name string, inputs ...string) string {
	s := Version + "\x00" + name
	for _, in := range inputs {
		s += "\x00" + in
	}
	return name + "-" + digest.FromString(s).Encoded()[:16]
}

// cached returns the image stored under cacheDir/key, building it with fn
// first if it is not there. Builds are serialised across processes by an
// flock on cacheDir/key.lock; fn writes into a fresh temporary directory that
// is renamed into place only when complete, so a crash or a failed build
// leaves nothing that a later run would trust.
func cached(ctx context.Context, cacheDir, key string, fn func(ctx context.Context, dir string) (*Image, error)) (*Image, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	final := filepath.Join(cacheDir, key)
	if img, err := loadImage(final); err == nil {
		return img, nil
	}
	lock, err := os.OpenFile(final+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", final, err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if img, err := loadImage(final); err == nil {
		return img, nil // another process built it while we waited
	}
	// Holding the lock, anything left under the temporary name is debris.
	tmp := filepath.Join(cacheDir, ".tmp-"+key)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("remove stale build: %w", err)
	}
	if err := os.RemoveAll(final); err != nil {
		return nil, fmt.Errorf("remove incomplete build: %w", err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return nil, err
	}
	img, err := fn(ctx, tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "image.json"), b, 0o644); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("move build into place: %w", err)
	}
	pruneStale(cacheDir, key)
	return loadImage(final)
}

// pruneStale removes the builds of the same image made under other keys (an
// older Version, another busybox binary), which would otherwise pile up —
// the big image is gigabytes. A build whose lock another process holds is
// left alone. Failures only leave debris for the next prune.
func pruneStale(cacheDir, key string) {
	name := key[:strings.LastIndex(key, "-")]
	old, _ := filepath.Glob(filepath.Join(cacheDir, name+"-*.lock"))
	for _, l := range old {
		dir := strings.TrimSuffix(l, ".lock")
		if filepath.Base(dir) == key || strings.Count(strings.TrimPrefix(filepath.Base(dir), name+"-"), "-") != 0 {
			continue
		}
		f, err := os.Open(l)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			if os.RemoveAll(dir) == nil {
				os.Remove(l)
			}
		}
		f.Close()
	}
}

var (
	errNotBuilt = errors.New("not built")
	errNegative = errors.New("negative count")
)

func loadImage(dir string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, "image.json"))
	if err != nil {
		return nil, errNotBuilt
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	img.relocate(dir)
	return &img, nil
}
