package testdata

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
)

// memo keeps each image for the life of the test binary, so a package whose
// tests all ask for the same image reads the cache once.
var memo sync.Map // cache dir + name → *memoEntry

type memoEntry struct {
	once sync.Once
	img  *Image
	err  error
}

func get(t testing.TB, name string, fn func(ctx context.Context, cacheDir string) (*Image, error)) (*Image, error) {
	t.Helper()
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	v, _ := memo.LoadOrStore(dir+"\x00"+name, &memoEntry{})
	m := v.(*memoEntry)
	m.once.Do(func() { m.img, m.err = fn(context.Background(), dir) })
	return m.img, m.err
}

// Busybox returns the busybox test image (see BuildBusybox), building it into
// the cache on first use; it fails the test if it cannot.
func Busybox(t testing.TB) *Image {
	t.Helper()
	img, err := get(t, "busybox", BuildBusybox)
	if err != nil {
		t.Fatalf("busybox test image: %v", err)
	}
	return img
}

// Big returns the benchmarks' big image (see BuildBig), building it into the
// cache on first use, which takes minutes; it fails the test if it cannot.
func Big(t testing.TB) *Image {
	t.Helper()
	img, err := get(t, "big", BuildBig)
	if err != nil {
		t.Fatalf("big test image: %v", err)
	}
	return img
}

// Files returns the image of n small files (see BuildFiles), building it
// into the cache on first use; it fails the test if it cannot.
func Files(t testing.TB, n int) *Image {
	t.Helper()
	img, err := get(t, "files"+strconv.Itoa(n), func(ctx context.Context, dir string) (*Image, error) {
		return BuildFiles(ctx, dir, n)
	})
	if err != nil {
		t.Fatalf("files test image: %v", err)
	}
	return img
}

// Debian returns the Debian bookworm minbase image (see BuildDebian),
// building it into the cache on first use. It skips the test when
// debootstrap cannot run (no network, not installed) and fails it otherwise.
func Debian(t testing.TB) *Image {
	t.Helper()
	img, err := get(t, "debian", BuildDebian)
	if errors.Is(err, ErrDebootstrap) {
		t.Skipf("debian test image: %v", err)
	}
	if err != nil {
		t.Fatalf("debian test image: %v", err)
	}
	return img
}

// BusyboxRootfs writes the busybox image's merged root filesystem (what a
// container sees: whiteouts applied, opaque directory replaced) into dir,
// which must exist, typically t.TempDir(). The tree is the caller's to
// change. It fails the test if it cannot.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	if err := WriteBusyboxRootfs(dir); err != nil {
		t.Fatalf("busybox rootfs: %v", err)
	}
}
