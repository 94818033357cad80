package cas

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// XattrShared marks an inode that the store adopted as an object (see
// IngestOptions.Adopt) and that still has a name outside the store. Its
// value is the object's digest. Whoever owns the other name must not
// change the inode's bytes in place while it has more than one link:
// it copies the file, renames the copy over its own name, and writes that
// (layerfs does so before any open for writing, truncate or link). An
// object's mode, owner, times and xattrs are never read by the store (the
// layer index holds the metadata), so changing those on the shared inode
// does no harm.
const XattrShared = "trusted.fusebox.shared"

// adoptSeq makes the store's temporary names of adopted files unique.
var adoptSeq atomic.Uint64

// Adopted reports whether the file at p is an inode the store adopted and
// still shares: it carries XattrShared and has more than one link.
func Adopted(p string) (bool, error) {
	if _, err := unix.Lgetxattr(p, XattrShared, nil); err != nil {
		if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
			return false, nil
		}
		return false, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return false, err
	}
	return st.Nlink > 1, nil
}

// adopted stores one file's content, size bytes from r, by adopting the
// file opts.Files offers for it: the tar's bytes are hashed, not written;
// if the store lacks the content, the offered file is linked into the
// store's temp dir, hashed again there, and renamed into place as the
// object when both digests agree. Without an offer, or when the link
// cannot be made, the bytes are cloned or copied from the offered file (or
// written from the tar when nothing is offered) and checked the same way.
func (in *ingest) adopted(r io.Reader, name string, size int64, buf []byte) (digest.Digest, bool, error) {
	src := in.opts.Files(name, size)
	if src == nil {
		return in.written(r, size, buf)
	}
	defer src.Close()
	th := sha256.New()
	if n, err := io.CopyBuffer(th, io.LimitReader(r, size), buf); err != nil {
		return "", false, err
	} else if n != size {
		return "", false, io.ErrUnexpectedEOF
	}
	d := digest.NewDigest(digest.SHA256, th)
	in.files = true
	if in.holds(d) {
		return d, false, nil
	}
	in.hold(d) // before the look, so that no GC removes what it finds
	if _, err := os.Stat(in.s.objectFile(d)); err == nil {
		// Stored already (by another layer): nothing to write or link.
		return d, false, nil
	}
	tmp := filepath.Join(in.s.path("tmp"), fmt.Sprintf("adopt-%d-%s", adoptSeq.Add(1), d.Encoded()[:16]))
	linked, err := in.link(src, tmp, d, size)
	if err != nil {
		return "", false, err
	}
	if !linked {
		f, err := os.CreateTemp(in.s.path("tmp"), "object-")
		if err != nil {
			return "", false, err
		}
		tmp = f.Name()
		err = copyOffered(f, src, size, buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp)
			return "", false, err
		}
	}
	got, err := hashFile(tmp, buf)
	if err == nil && got != d {
		err = fmt.Errorf("entry %q: the offered file does not hold the tar's bytes: %w", name, ErrDigestMismatch)
	}
	if err != nil {
		if linked {
			unix.Fremovexattr(int(src.Fd()), XattrShared)
		}
		os.Remove(tmp)
		return "", false, err
	}
	if err := in.s.placeObject(tmp, d); err != nil {
		os.Remove(tmp)
		return "", false, err
	}
	os.Remove(tmp) // left when the object appeared meanwhile
	in.created = append(in.created, d)
	return d, false, nil
}

// link gives the offered file a second name, tmp, in the store, marked
// shared first so that no writer that opens it after the link misses the
// mark. It reports false, having changed nothing, when the file cannot be
// adopted: not a regular file of the expected size, other names of its
// own, or on another file system.
func (in *ingest) link(src *os.File, tmp string, d digest.Digest, size int64) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != size {
		return false, nil
	}
	if st.Nlink > 1 {
		// Other names of the owner's own (hard links): a write would
		// have to find and move them all to the copy. Copied instead.
		return false, nil
	}
	if err := unix.Fsetxattr(int(src.Fd()), XattrShared, []byte(d.String()), 0); err != nil {
		return false, nil // no trusted xattrs here: the mark cannot be made
	}
	err := unix.Linkat(int(src.Fd()), "", unix.AT_FDCWD, tmp, unix.AT_EMPTY_PATH)
	if err != nil {
		unix.Fremovexattr(int(src.Fd()), XattrShared)
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EMLINK) || errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("adopt offered file: %w", err)
	}
	return true, nil
}

// copyOffered fills f with size bytes of src: a reflink where the file
// system shares extents, else a copy (copy_file_range where it can).
func copyOffered(f, src *os.File, size int64, buf []byte) error {
	if err := unix.IoctlFileClone(int(f.Fd()), int(src.Fd())); err == nil {
		return f.Sync()
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(src, size))
	if err != nil {
		return err
	}
	if n != size {
		return io.ErrUnexpectedEOF
	}
	return f.Sync()
}

// written stores size bytes of r as an object file, hashing as it writes.
func (in *ingest) written(r io.Reader, size int64, buf []byte) (digest.Digest, bool, error) {
	f, err := os.CreateTemp(in.s.path("tmp"), "object-")
	if err != nil {
		return "", false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, size), buf)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, err
	}
	return in.place(tmp, digest.NewDigest(digest.SHA256, h))
}

// hashFile is the sha256 of a file's bytes.
func hashFile(p string, buf []byte) (digest.Digest, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA256, h), nil
}
