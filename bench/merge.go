package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MergeLayers writes into dst a plain copy of what overlayfs would show for
// layers (top first): upper entries hide lower ones, 0/0 character devices
// and ".wh." names delete, opaque directories (trusted.overlay.opaque or
// user.overlay.opaque "y", or a ".wh..wh..opq" entry) hide everything
// below them. It is the native baseline's copy and the reference the tests
// hold the union mounts to.
func MergeLayers(ctx context.Context, layers []string, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for i := len(layers) - 1; i >= 0; i-- {
		if err := mergeLayer(ctx, layers[i], dst); err != nil {
			return fmt.Errorf("merge %s: %w", layers[i], err)
		}
	}
	return nil
}

func mergeLayer(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		base := filepath.Base(p)
		if rel != "." && strings.HasPrefix(base, ".wh.") {
			if base == ".wh..wh..opq" {
				return clearDir(filepath.Dir(target))
			}
			return os.RemoveAll(filepath.Join(filepath.Dir(target), strings.TrimPrefix(base, ".wh.")))
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode()
		switch {
		case mode&fs.ModeCharDevice != 0 && st.Rdev == 0:
			return os.RemoveAll(target)
		case mode.IsDir():
			if rel == "." {
				return nil
			}
			if tfi, err := os.Lstat(target); err == nil && !tfi.IsDir() {
				if err := os.Remove(target); err != nil {
					return err
				}
			}
			if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if isOpaque(p) {
				if err := clearDir(target); err != nil {
					return err
				}
			}
		case mode.IsRegular():
			if err := os.RemoveAll(target); err != nil {
				return err
			}
			if err := copyFile(p, target, mode.Perm()); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(target); err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		default:
			if err := os.RemoveAll(target); err != nil {
				return err
			}
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		}
		if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if mode&fs.ModeSymlink == 0 {
			// Chmod after chown: chown clears set-id bits.
			return os.Chmod(target, fs.FileMode(st.Mode&0o7777)|modeType(mode))
		}
		return nil
	})
}

// modeType keeps the set-id and sticky bits in os.Chmod's terms.
func modeType(m fs.FileMode) fs.FileMode {
	return m & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

func isOpaque(dir string) bool {
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		buf := make([]byte, 8)
		n, err := unix.Lgetxattr(dir, name, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
