package layerfs

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// ErrBusy is returned when the mount point is already a mount point.
var ErrBusy = errors.New("mount point is busy")

// Default cache lifetimes; see the package documentation.
const (
	DefaultLowerTimeout = time.Hour
	DefaultUpperTimeout = time.Second
)

// MountOptions says what to mount. It is plain data.
type MountOptions struct {
	// Lowers are the read-only layers, top first.
	Lowers []Source
	// UpperDir and WorkDir make the mount writable: changes go to UpperDir
	// in overlayfs's format; WorkDir, on the same file system, holds
	// temporary files (in WorkDir/work, as overlayfs) and the change
	// journal. Both empty: a read-only mount.
	UpperDir, WorkDir string
	// JournalPath overrides where the change journal is kept
	// (default WorkDir/fusebox.journal).
	JournalPath string
	// FsName is the "device" shown in /proc/mounts (default "fusebox").
	FsName string
	// Name is the file system subtype: the type shows as fuse.Name
	// (default "fusebox").
	Name string
	// LowerTimeout and UpperTimeout are the kernel's entry and attribute
	// cache lifetimes for lower and upper objects (defaults
	// DefaultLowerTimeout, DefaultUpperTimeout).
	LowerTimeout, UpperTimeout time.Duration
	// ExtraOptions are more mount options (e.g. "noatime").
	ExtraOptions []string
	// Debug logs every FUSE request to Logger.
	Debug bool
	// Logger receives diagnostics (nil: none).
	Logger *log.Logger
}

// Server is a served union mount.
type Server struct {
	// Dir is the mount point.
	Dir string

	server  *fuse.Server
	fsys    *layerFS
	dev     uint64 // the FUSE connection's device number
	once    sync.Once
	unmnErr error
}

// Mount mounts the union of opts.Lowers (and opts.UpperDir) at dir and
// serves it until Unmount. The mount has allow_other, default_permissions
// (the kernel checks permissions against the modes shown), suid and dev.
func Mount(ctx context.Context, dir string, opts MountOptions) (*Server, error) {
	if len(opts.Lowers) == 0 {
		return nil, fmt.Errorf("mount %s: %w: no lower layers", dir, ErrBadOptions)
	}
	if (opts.UpperDir == "") != (opts.WorkDir == "") {
		return nil, fmt.Errorf("mount %s: %w: upperdir and workdir go together", dir, ErrBadOptions)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	if busy, err := isMountPoint(abs); err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	} else if busy {
		return nil, fmt.Errorf("mount %s: %w", dir, ErrBusy)
	}
	l, root, err := newFS(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	name := opts.Name
	if name == "" {
		name = "fusebox"
	}
	fsname := opts.FsName
	if fsname == "" {
		fsname = "fusebox"
	}
	lowerTO := l.lowerTimeout
	fopts := &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:   true,
			Options:      append([]string{"default_permissions", "suid", "dev"}, opts.ExtraOptions...),
			FsName:       fsname,
			Name:         name,
			DirectMount:  true,
			MaxWrite:     1 << 20,
			Debug:        opts.Debug,
			Logger:       opts.Logger,
			MaxReadAhead: 1 << 20,
			// The kernel checks POSIX ACLs and caches them per inode,
			// absent ones included: ls -l asks for
			// system.posix_acl_access of every file, which without
			// this is a GETXATTR round trip each time. Kernel
			// overlayfs and fuse-overlayfs honour ACLs too.
			EnableAcl: true,
		},
		EntryTimeout:    &lowerTO,
		AttrTimeout:     &lowerTO,
		NegativeTimeout: &lowerTO,
		RootStableAttr:  &fs.StableAttr{Ino: 1},
		NullPermissions: true,
		Logger:          opts.Logger,
	}
	if l.upper != "" {
		upTO := l.upperTimeout
		fopts.EntryTimeout, fopts.AttrTimeout, fopts.NegativeTimeout = &upTO, &upTO, &upTO
	}
	// go-fuse opens /dev/fuse without O_CLOEXEC for a direct mount: every
	// process the daemon started while the mount lived (each container's
	// shim) would hold the connection, and a mount whose daemon died would
	// hang instead of failing. Forks wait (ForkLock) until it is marked.
	syscall.ForkLock.RLock()
	server, err := fs.Mount(abs, root, fopts)
	closeFuseOnExec()
	syscall.ForkLock.RUnlock()
	if err != nil {
		l.close()
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err != nil {
		server.Unmount()
		l.close()
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	return &Server{Dir: abs, server: server, fsys: l, dev: st.Dev}, nil
}

// checkUpper makes sure the upper and work dirs exist and can hold
// overlayfs's trusted xattrs, and creates WorkDir/work.
func checkUpper(upper, work string) error {
	for _, d := range []string{upper, work} {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: %w", d, syscall.ENOTDIR)
		}
	}
	var su, sw unix.Stat_t
	if err := unix.Stat(upper, &su); err != nil {
		return err
	}
	if err := unix.Stat(work, &sw); err != nil {
		return err
	}
	if su.Dev != sw.Dev {
		return fmt.Errorf("%w: upperdir and workdir must be on the same file system", ErrBadOptions)
	}
	if err := os.MkdirAll(filepath.Join(work, "work"), 0700); err != nil {
		return err
	}
	probe := filepath.Join(work, "work", "#xattr-probe")
	os.Remove(probe)
	if err := os.WriteFile(probe, nil, 0600); err != nil {
		return err
	}
	defer os.Remove(probe)
	if err := unix.Lsetxattr(probe, xattrOpaque, []byte("y"), 0); err != nil {
		return fmt.Errorf("upper dir cannot hold trusted xattrs: %w", err)
	}
	return nil
}

// isMountPoint reports whether dir is the root of a mount.
func isMountPoint(dir string) (bool, error) {
	var st, pst unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, syscall.ENOTDIR
	}
	if err := unix.Lstat(filepath.Dir(dir), &pst); err != nil {
		return false, err
	}
	return st.Dev != pst.Dev || (st.Ino == pst.Ino && dir != "/"), nil
}

// Journal is the change journal of a writable mount (nil for a read-only
// one).
func (m *Server) Journal() *Journal { return m.fsys.journal }

// Passthrough reports whether the kernel accepted FUSE passthrough, so
// lower files are read without a round trip through this process.
func (m *Server) Passthrough() bool {
	return m.server.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH != 0
}

// Wait blocks until the file system is unmounted (by Unmount or by
// fusermount -u / umount from outside).
func (m *Server) Wait() { m.server.Wait() }

// Unmount unmounts and stops serving. If files are still open it detaches
// the mount (MNT_DETACH) rather than fail, so it never hangs and never
// leaves the mount point busy. It syncs and closes the journal.
func (m *Server) Unmount() error {
	m.once.Do(func() {
		var st unix.Stat_t
		if unix.Stat(m.Dir, &st) == nil && st.Dev != m.dev {
			// Unmounted from outside (umount, fusermount -u): the
			// server is stopping by itself.
			m.server.Wait()
			m.unmnErr = m.fsys.close()
			return
		}
		// Unmount directly rather than through go-fuse, which retries
		// with fusermount: a child started by the serving process is
		// what the package doc warns about.
		err := unix.Unmount(m.Dir, 0)
		switch {
		case err == nil:
		case errors.Is(err, unix.EBUSY):
			// Busy: detach it, and abort the connection so that open
			// files get ENOTCONN instead of keeping this server alive.
			if derr := unix.Unmount(m.Dir, unix.MNT_DETACH); derr != nil {
				m.unmnErr = fmt.Errorf("unmount %s: %w", m.Dir, derr)
				return
			}
			if aerr := abortConnection(m.dev); aerr != nil {
				m.unmnErr = fmt.Errorf("unmount %s: %w", m.Dir, aerr)
				return
			}
		default: // not root: the mount was made by fusermount
			if serr := m.server.Unmount(); serr != nil {
				m.unmnErr = fmt.Errorf("unmount %s: %w", m.Dir, serr)
				return
			}
		}
		m.server.Wait()
		if jerr := m.fsys.close(); jerr != nil && m.unmnErr == nil {
			m.unmnErr = jerr
		}
	})
	return m.unmnErr
}

// abortConnection aborts the FUSE connection with device number dev
// through fusectl, mounting fusectl if nobody has.
func abortConnection(dev uint64) error {
	const ctl = "/sys/fs/fuse/connections"
	p := filepath.Join(ctl, fmt.Sprint(dev), "abort")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		if err := unix.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount fusectl: %w", err)
		}
	}
	if err := os.WriteFile(p, []byte("1"), 0); err != nil {
		return fmt.Errorf("abort fuse connection: %w", err)
	}
	return nil
}

// newFS builds the file system a mount serves: the merged view (cached),
// the upper dir checked and the journal opened.
func newFS(ctx context.Context, opts MountOptions) (*layerFS, *node, error) {
	t, err := mergedTree(ctx, opts.Lowers)
	if err != nil {
		return nil, nil, err
	}
	l := &layerFS{t: t, logger: opts.Logger, lowerTimeout: opts.LowerTimeout, upperTimeout: opts.UpperTimeout}
	if l.lowerTimeout == 0 {
		l.lowerTimeout = DefaultLowerTimeout
	}
	if l.upperTimeout == 0 {
		l.upperTimeout = DefaultUpperTimeout
	}
	if opts.UpperDir != "" {
		if l.upper, err = filepath.Abs(opts.UpperDir); err != nil {
			return nil, nil, err
		}
		if l.work, err = filepath.Abs(opts.WorkDir); err != nil {
			return nil, nil, err
		}
		if err := checkUpper(l.upper, l.work); err != nil {
			return nil, nil, err
		}
		jp := opts.JournalPath
		if jp == "" {
			jp = filepath.Join(l.work, "fusebox.journal")
		}
		for _, d := range []string{l.upper, filepath.Join(l.work, "work")} {
			fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				l.close()
				return nil, nil, err
			}
			l.pins = append(l.pins, fd)
		}
		if l.journal, err = OpenJournal(jp); err != nil {
			l.close()
			return nil, nil, err
		}
	}
	root := &node{fsys: l, st: nodeState{lower: t.root, upper: l.upper != ""}}
	if l.upper != "" {
		root.st.uino = inoOf(l.upper)
	}
	l.root = root
	return l, root, nil
}

// close closes the journal (syncing it) and lets go of the pinned
// directories; it reports the journal's error.
func (l *layerFS) close() error {
	err := l.journal.Close()
	for _, fd := range l.pins {
		unix.Close(fd)
	}
	l.pins = nil
	return err
}

// closeFuseOnExec marks every /dev/fuse descriptor of the process
// close-on-exec.
func closeFuseOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "/dev/fuse" {
			unix.CloseOnExec(fd)
		}
	}
}
