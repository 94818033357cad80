package launcher

import (
	"errors"
	"fmt"
	"io"
	"os"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
)

// ErrUnknownUser is wrapped by ResolveUser when a user or group name is not
// in the rootfs's /etc/passwd or /etc/group.
var ErrUnknownUser = errors.New("unable to find user")

// ResolveUser resolves a `docker run -u` value (name, uid, name:group,
// uid:gid, and the mixes) against the rootfs's /etc/passwd and /etc/group,
// as Docker does: a name must exist, a number need not; the user's
// supplementary groups and home come from the files; an empty spec is root.
// The files are opened inside rootfs even when they are symlinks, so a
// hostile image can't make the daemon read the host's.
func ResolveUser(rootfs, spec string) (User, error) {
	passwd, err := openInRoot(rootfs, "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	if passwd != nil {
		defer passwd.Close()
	}
	group, err := openInRoot(rootfs, "/etc/group")
	if err != nil {
		return User{}, err
	}
	if group != nil {
		defer group.Close()
	}
	defaults := user.ExecUser{Uid: 0, Gid: 0, Home: "/"}
	var pr, gr io.Reader
	if passwd != nil {
		pr = passwd
	}
	if group != nil {
		gr = group
	}
	eu, err := user.GetExecUser(spec, &defaults, pr, gr)
	if err != nil {
		return User{}, fmt.Errorf("%w %s: %w", ErrUnknownUser, spec, err)
	}
	// Like Docker, the primary group is also listed among the
	// supplementary ones, so `id` shows groups=1000(app),2000(extra).
	u := User{UID: uint32(eu.Uid), GID: uint32(eu.Gid), Home: eu.Home, AdditionalGids: []uint32{uint32(eu.Gid)}}
	for _, g := range eu.Sgids {
		if uint32(g) != u.GID {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, nil
}

// openInRoot opens name inside rootfs, resolving symlinks as if rootfs were
// /; a missing file is (nil, nil).
func openInRoot(rootfs, name string) (*os.File, error) {
	p, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in rootfs: %w", name, err)
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in rootfs: %w", name, err)
	}
	return f, nil
}
