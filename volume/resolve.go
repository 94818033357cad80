package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// maxLinks bounds the symlinks Resolve follows, as the kernel's ELOOP does.
const maxLinks = 40

// Resolve finds where target, an absolute path inside the container, is
// on the host under root (the mounted rootfs), following the image's
// symlinks as the container would see them: an absolute link starts again
// at root. A relative link that climbs above the root is refused with
// ErrTargetEscapes rather than clamped, because a mount through it would
// not land where the image's author meant; the same goes for a target
// whose own ".." climbs out. Components that don't exist yet are appended
// as they are (the runtime creates them, scoped to the rootfs).
func Resolve(root, target string) (string, error) {
	if !path.IsAbs(target) {
		return "", fmt.Errorf("%w: %q is not an absolute path", ErrInvalidSpec, target)
	}
	rest := splitPath(target)
	var cur []string // resolved components, below root
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return "", fmt.Errorf("%w: %s", ErrTargetEscape, target)
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := append(cur[:len(cur):len(cur)], c)
		host := filepath.Join(root, filepath.Join(next...))
		fi, err := os.Lstat(host)
		if errors.Is(err, fs.ErrNotExist) {
			cur = next
			continue
		}
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", target, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("resolve %s: %w", target, syscall.ELOOP)
		}
		dest, err := os.Readlink(host)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", target, err)
		}
		if path.IsAbs(dest) {
			cur = nil
		}
		rest = append(splitPath(dest), rest...)
	}
	return filepath.Join(root, filepath.Join(cur...)), nil
}

func splitPath(p string) []string { return strings.Split(p, "/") }
