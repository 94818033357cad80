// Package mountspec reads the --mount flag, Docker's comma-separated
// key=value list, into the API's mount, with Docker's error texts. It is a
// leaf, so that the CLI checks the flag before anything is sent without
// linking the volume store; the daemon checks the mount it receives with
// the volume package (volume.FromAPI), whose ErrInvalidSpec is this one.
package mountspec

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// ErrInvalidSpec is matched by errors.Is for every error about a
// malformed mount.
var ErrInvalidSpec = errors.New("invalid mount specification")

// specError is Docker's message, with nothing added, that errors.Is
// matches against ErrInvalidSpec.
type specError struct{ msg string }

func (e *specError) Error() string        { return e.msg }
func (e *specError) Is(target error) bool { return target == ErrInvalidSpec }

func invalidf(format string, args ...any) error {
	return &specError{msg: fmt.Sprintf(format, args...)}
}

// ParseMountFlag reads a --mount value, Docker's comma-separated key=value
// list (type, source/src, target/destination/dst, readonly/ro,
// bind-propagation, bind-nonrecursive, volume-nocopy, volume-label,
// volume-driver, volume-opt, tmpfs-size, tmpfs-mode), into the API's
// mount, as the docker CLI does before sending it.
func ParseMountFlag(value string) (mount.Mount, error) {
	r := csv.NewReader(strings.NewReader(value))
	fields, err := r.Read()
	if err != nil {
		return mount.Mount{}, invalidf("invalid --mount %q: %v", value, err)
	}
	m := mount.Mount{Type: mount.TypeVolume}
	bind := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	vol := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	drv := func() *mount.Driver {
		if vol().DriverConfig == nil {
			m.VolumeOptions.DriverConfig = &mount.Driver{}
		}
		return m.VolumeOptions.DriverConfig
	}
	tmp := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	boolVal := func(k, v string, has bool) (bool, error) {
		if !has {
			return true, nil
		}
		switch strings.ToLower(v) {
		case "1", "true":
			return true, nil
		case "0", "false":
			return false, nil
		}
		return false, invalidf("invalid value for %s: %s", k, v)
	}
	for _, f := range fields {
		k, v, has := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "readonly", "ro":
			b, err := boolVal(k, v, has)
			if err != nil {
				return mount.Mount{}, err
			}
			m.ReadOnly = b
			continue
		case "bind-nonrecursive":
			b, err := boolVal(k, v, has)
			if err != nil {
				return mount.Mount{}, err
			}
			bind().NonRecursive = b
			continue
		case "volume-nocopy":
			b, err := boolVal(k, v, has)
			if err != nil {
				return mount.Mount{}, err
			}
			vol().NoCopy = b
			continue
		}
		if !has {
			return mount.Mount{}, invalidf("invalid field '%s' must be a key=value pair", f)
		}
		switch k {
		case "type":
			m.Type = mount.Type(strings.ToLower(v))
		case "source", "src":
			m.Source = v
		case "target", "dst", "destination":
			m.Target = v
		case "consistency":
			m.Consistency = mount.Consistency(v)
		case "bind-propagation":
			bind().Propagation = mount.Propagation(strings.ToLower(v))
		case "volume-label":
			lk, lv, _ := strings.Cut(v, "=")
			if vol().Labels == nil {
				m.VolumeOptions.Labels = map[string]string{}
			}
			m.VolumeOptions.Labels[lk] = lv
		case "volume-driver":
			drv().Name = v
		case "volume-opt":
			ok, ov, _ := strings.Cut(v, "=")
			if drv().Options == nil {
				m.VolumeOptions.DriverConfig.Options = map[string]string{}
			}
			m.VolumeOptions.DriverConfig.Options[ok] = ov
		case "volume-subpath":
			vol().Subpath = v
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return mount.Mount{}, invalidf("invalid value for %s: %s", k, v)
			}
			tmp().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return mount.Mount{}, invalidf("invalid value for %s: %s", k, v)
			}
			tmp().Mode = os.FileMode(n & 0o777)
			if n&0o1000 != 0 {
				tmp().Mode |= os.ModeSticky
			}
		default:
			return mount.Mount{}, invalidf("unexpected key '%s' in '%s'", k, f)
		}
	}
	if m.Target == "" {
		return mount.Mount{}, invalidf("target is required")
	}
	if m.BindOptions != nil && m.Type != mount.TypeBind {
		return mount.Mount{}, invalidf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	}
	if m.VolumeOptions != nil && m.Type != mount.TypeVolume {
		return mount.Mount{}, invalidf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	}
	if m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
		return mount.Mount{}, invalidf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	return m, nil
}
