package layerfs

import (
	"context"
	"os"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/fusebox/fusebox/cas"
)

// fileFder is a handle backed by a real file.
type fileFder interface {
	file() *os.File
	isUpper() bool
}

// handle is an open file of the upper dir or a lower layer. It forwards to
// go-fuse's LoopbackFile but leaves out Getattr and Statx, which the node
// answers so that inode numbers and lower metadata stay the merged view's,
// and Flush (see node.Flush).
type handle struct {
	f     *os.File
	lf    *fs.LoopbackFile
	upper bool
	n     *node
	pt    bool // offered for passthrough
}

// ptHandle is a handle that offers its file to the kernel for passthrough.
type ptHandle struct{ *handle }

// newHandle makes a handle on f for node n, offering f for passthrough
// if pt. The caller decided pt with n.openMode, which counted the open.
func newHandle(n *node, f *os.File, upper, pt bool) fs.FileHandle {
	h := &handle{f: f, lf: fs.NewLoopbackFileFromOS(f), upper: upper, n: n, pt: pt}
	if pt {
		return ptHandle{h}
	}
	return h
}

// openMode decides whether a new open of n is offered to the kernel for
// passthrough, and counts it. The kernel refuses (EIO) a passthrough open
// of an inode that has opens in caching mode, and a caching open of one
// that has passthrough opens, so an open joins the mode of the opens
// still alive. The counts drop at RELEASE, which the kernel sends after
// it has let go of the file itself, so they never undercount the
// kernel's.
func (n *node) openMode(wantPT bool) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	pt := n.ptOpens > 0 || (wantPT && n.cachedOpens == 0)
	if pt {
		n.ptOpens++
	} else {
		n.cachedOpens++
	}
	return pt
}

// released uncounts an open that openMode counted.
func (n *node) released(pt bool) {
	n.mu.Lock()
	if pt {
		n.ptOpens--
	} else {
		n.cachedOpens--
	}
	n.mu.Unlock()
}

var (
	_ = (fs.FileReader)((*handle)(nil))
	_ = (fs.FileWriter)((*handle)(nil))
	_ = (fs.FileReleaser)((*handle)(nil))
	_ = (fs.FileFsyncer)((*handle)(nil))
	_ = (fs.FileAllocater)((*handle)(nil))
	_ = (fs.FileLseeker)((*handle)(nil))
	_ = (fs.FilePassthroughFder)(ptHandle{})
)

func (h *handle) file() *os.File { return h.f }
func (h *handle) isUpper() bool  { return h.upper }

func (h *handle) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return h.lf.Read(ctx, buf, off)
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	return h.lf.Write(ctx, data, off)
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.n.released(h.pt)
	return h.lf.Release(ctx)
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.lf.Fsync(ctx, flags)
}

func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	return h.lf.Allocate(ctx, off, size, mode)
}

func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lf.Lseek(ctx, off, whence)
}

func (h ptHandle) PassthroughFd() (int, bool) { return h.lf.PassthroughFd() }

// passthroughMin is the size from which a lower file is offered to the
// kernel for FUSE passthrough. A smaller file is read whole by one or two
// READ requests, after which the page cache serves it (FOPEN_KEEP_CACHE);
// passthrough would save those requests but costs two ioctls and a file
// descriptor on every open, and every read through the backing file
// invalidates the inode's atime, so the next stat of the file is a
// GETATTR round trip where a cached file needs none.
const passthroughMin = 128 << 10

// lowerHandle is an open small lower file. The layer's file is opened at
// the first READ, not at open: a file whose pages the kernel already
// caches is opened and closed without a system call, and a warm read of
// it costs just the OPEN and RELEASE requests.
type lowerHandle struct {
	src Source
	e   *cas.Entry
	n   *node

	mu     sync.Mutex
	opened bool
	f      *os.File // nil when the content is in data
	data   []byte
	errno  syscall.Errno
}

var (
	_ = (fs.FileReader)((*lowerHandle)(nil))
	_ = (fs.FileReleaser)((*lowerHandle)(nil))
)

func (h *lowerHandle) open(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.opened {
		return h.errno
	}
	h.opened = true
	c, err := h.src.Open(ctx, h.e)
	if err != nil {
		h.n.fsys.logf("layerfs: open %s: %v", h.n.relPath(), err)
		h.errno = syscall.EIO
		return h.errno
	}
	h.f, h.data = c.File, c.Data
	return 0
}

func (h *lowerHandle) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := h.open(ctx); errno != 0 {
		return nil, errno
	}
	if h.f != nil {
		return fuse.ReadResultFd(h.f.Fd(), off, len(buf)), 0
	}
	return memRead(h.data, buf, off), 0
}

func (h *lowerHandle) Release(ctx context.Context) syscall.Errno {
	h.n.released(false)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
	return 0
}

func memRead(data, buf []byte, off int64) fuse.ReadResult {
	if off >= int64(len(data)) {
		return fuse.ReadResultData(nil)
	}
	end := off + int64(len(buf))
	if end > int64(len(data)) {
		end = int64(len(data))
	}
	return fuse.ReadResultData(data[off:end])
}

// memHandle serves a small lower file kept in memory.
type memHandle struct {
	data []byte
	n    *node
}

var (
	_ = (fs.FileReader)((*memHandle)(nil))
	_ = (fs.FileReleaser)((*memHandle)(nil))
)

func (h *memHandle) Release(ctx context.Context) syscall.Errno {
	h.n.released(false)
	return 0
}

func (h *memHandle) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return memRead(h.data, buf, off), 0
}
