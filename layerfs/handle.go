package layerfs

import (
	"context"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
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
}

// ptHandle is a handle that offers its file to the kernel for passthrough.
type ptHandle struct{ *handle }

func newHandle(f *os.File, upper, passthrough bool) fs.FileHandle {
	h := &handle{f: f, lf: fs.NewLoopbackFileFromOS(f), upper: upper}
	if passthrough {
		return ptHandle{h}
	}
	return h
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

func (h *handle) Release(ctx context.Context) syscall.Errno { return h.lf.Release(ctx) }

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

// memHandle serves a small lower file kept in memory.
type memHandle struct{ data []byte }

var _ = (fs.FileReader)((*memHandle)(nil))

func (h *memHandle) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := off + int64(len(buf))
	if end > int64(len(h.data)) {
		end = int64(len(h.data))
	}
	return fuse.ReadResultData(h.data[off:end]), 0
}
