package volume

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Driver options of the local driver, as Docker's: a volume created with
// type, device and o (`volume create -o type=tmpfs -o device=tmpfs -o
// o=size=64m`) is a filesystem mounted on its data directory while a
// container that uses it runs, like mount -t TYPE -o O DEVICE.
const (
	OptType   = "type"
	OptDevice = "device"
	OptMount  = "o"
)

// mountOptions is a volume's mount, from its driver options.
type mountOptions struct {
	typ, device, data string
	flags             uintptr
}

// mountFlags are the options of o that are mount flags rather than
// filesystem data; the rest is passed to the filesystem as it is.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
}

// parseDriverOptions checks a volume's driver options; nil means a plain
// directory.
func parseDriverOptions(name string, opts map[string]string) (*mountOptions, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	for k := range opts {
		switch k {
		case OptType, OptDevice, OptMount:
		default:
			return nil, errorf(ErrBadOption, "create %s: invalid option key: %q", name, k)
		}
	}
	m := &mountOptions{typ: opts[OptType], device: opts[OptDevice]}
	if m.typ == "" {
		return nil, errorf(ErrBadOption, "create %s: missing required option: %q", name, OptType)
	}
	if m.device == "" {
		return nil, errorf(ErrBadOption, "create %s: missing required option: %q", name, OptDevice)
	}
	var data []string
	for _, o := range strings.Split(opts[OptMount], ",") {
		if o == "" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				m.flags &^= f.flag
			} else {
				m.flags |= f.flag
			}
			continue
		}
		data = append(data, o)
	}
	m.data = strings.Join(data, ",")
	return m, nil
}

// Mount makes the volume ready for container id's start: a volume with
// driver options is mounted on its data directory when the first running
// container needs it. A plain volume needs nothing.
func (s *Store) Mount(ctx context.Context, name, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get(name)
	if err != nil {
		return err
	}
	mo, err := parseDriverOptions(name, v.Options)
	if err != nil || mo == nil {
		return err
	}
	users := s.mounted[name]
	if _, ok := users[id]; ok {
		return nil
	}
	if len(users) == 0 {
		if err := unix.Mount(mo.device, v.Mountpoint, mo.typ, mo.flags, mo.data); err != nil {
			return fmt.Errorf("mount volume %s (type %s, device %s): %w", name, mo.typ, mo.device, err)
		}
		users = map[string]struct{}{}
		s.mounted[name] = users
	}
	users[id] = struct{}{}
	return nil
}

// Unmount is Mount's undo for container id, for every volume: a volume's
// filesystem is unmounted when the last running container that needed it
// stops.
func (s *Store) Unmount(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for name, users := range s.mounted {
		if _, ok := users[id]; !ok {
			continue
		}
		delete(users, id)
		if len(users) > 0 {
			continue
		}
		delete(s.mounted, name)
		if err := unix.Unmount(filepath.Join(s.dir, name, DataDir), unix.MNT_DETACH); err != nil && first == nil {
			first = fmt.Errorf("unmount volume %s: %w", name, err)
		}
	}
	return first
}

// unmountStale detaches the volume filesystems a previous daemon left
// mounted under dir (their containers died with it).
func unmountStale(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	for _, m := range mounts {
		if filepath.Base(m.Mountpoint) == DataDir {
			_ = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
		}
	}
	return nil
}
