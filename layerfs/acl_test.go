package layerfs_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/layerfs/layertest"
)

// aclXattr encodes a POSIX access ACL in the kernel's xattr format:
// owner rw-, user uid r--, group r--, mask r--, other ---.
func aclXattr(uid uint32) []byte {
	const undefined = 0xffffffff
	entries := []struct {
		tag, perm uint16
		id        uint32
	}{
		{0x01, 6, undefined}, // ACL_USER_OBJ
		{0x02, 4, uid},       // ACL_USER
		{0x04, 4, undefined}, // ACL_GROUP_OBJ
		{0x10, 4, undefined}, // ACL_MASK
		{0x20, 0, undefined}, // ACL_OTHER
	}
	b := binary.LittleEndian.AppendUint32(nil, 2) // version
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// readAs reads p with file-system uid and gid uid, on a thread that is
// thrown away afterwards.
func readAs(uid int, p string) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		unix.Setfsgid(uid)
		unix.Setfsuid(uid)
		_, err := os.ReadFile(p)
		ch <- err
	}()
	return <-ch
}

// TestPOSIXACL: the kernel checks POSIX ACLs (the mount negotiates
// FUSE_POSIX_ACL, which also lets it cache them): a user named in a
// file's ACL reads a file whose mode bits alone deny it, another user
// still cannot, and the ACL lands in the upper dir as kernel overlayfs
// would write it.
func TestPOSIXACL(t *testing.T) {
	m := mountRW(t, layertest.Layer{reg("f", 0640, "lower")})
	if err := readAs(1000, m.p("f")); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("uid 1000 reading a 0640 root file: %v, want permission denied", err)
	}
	acl := aclXattr(1000)
	if err := unix.Setxattr(m.p("f"), "system.posix_acl_access", acl, 0); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skip("the upper dir's file system has no POSIX ACLs")
		}
		t.Fatal(err)
	}
	if err := readAs(1000, m.p("f")); err != nil {
		t.Errorf("uid 1000 named in the ACL: %v", err)
	}
	if err := readAs(1001, m.p("f")); !errors.Is(err, os.ErrPermission) {
		t.Errorf("uid 1001 not in the ACL: %v, want permission denied", err)
	}
	buf := make([]byte, 256)
	n, err := unix.Getxattr(filepath.Join(m.upper, "f"), "system.posix_acl_access", buf)
	if err != nil || n != len(acl) {
		t.Errorf("ACL in the upper dir: %d bytes, %v; want %d bytes", n, err, len(acl))
	}
	// removing it goes back to the mode bits (and the kernel's cache
	// must not keep the old ACL)
	if err := unix.Removexattr(m.p("f"), "system.posix_acl_access"); err != nil {
		t.Fatal(err)
	}
	if err := readAs(1000, m.p("f")); !errors.Is(err, os.ErrPermission) {
		t.Errorf("uid 1000 after the ACL was removed: %v, want permission denied", err)
	}
}
