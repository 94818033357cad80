package volume

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MountPoint is one mount a container gets besides its rootfs: a bind
// mount of a host path, a volume, or a tmpfs. It is plain data: code that
// computes mount points doesn't mount (the launcher does, from Spec).
type MountPoint struct {
	Type mount.Type `json:"type"`
	// Name is the volume's name (volumes only).
	Name string `json:"name,omitempty"`
	// Source is the host path: the bind source, or the volume's data
	// directory once the volume exists.
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	// Mode is the mode text as given after the last colon of -v ("ro",
	// "z", "rw,rshared"), shown by inspect.
	Mode        string            `json:"mode,omitempty"`
	RW          bool              `json:"rw"`
	Propagation mount.Propagation `json:"propagation,omitempty"`
	// NonRecursive binds without the submounts of the source.
	NonRecursive bool `json:"nonRecursive,omitempty"`
	// NoCopy skips seeding a new volume from the image.
	NoCopy bool `json:"noCopy,omitempty"`
	// Anonymous volumes were made for this container (-v /path, the
	// image's VOLUME); `rm -v` removes them.
	Anonymous bool `json:"anonymous,omitempty"`
	// CreateSource makes a missing bind source a directory, as -v does
	// (--mount refuses one instead).
	CreateSource bool `json:"createSource,omitempty"`
	// Labels and DriverOptions go to a volume this mount creates
	// (--mount volume-label, volume-opt).
	Labels        map[string]string `json:"labels,omitempty"`
	DriverOptions map[string]string `json:"driverOptions,omitempty"`
	// Options are a tmpfs's mount options.
	Options []string `json:"options,omitempty"`
}

// API is the mount point as inspect's Mounts shows it.
func (m MountPoint) API() container.MountPoint {
	out := container.MountPoint{
		Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination,
		Mode: m.Mode, RW: m.RW, Propagation: m.Propagation,
	}
	if m.Type == mount.TypeVolume {
		out.Driver = Driver
	}
	return out
}

// Spec is the OCI mount the runtime performs.
func (m MountPoint) Spec() specs.Mount {
	if m.Type == mount.TypeTmpfs {
		return specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: append([]string(nil), m.Options...)}
	}
	opts := []string{"rbind"}
	if m.NonRecursive {
		opts = []string{"bind"}
	}
	prop := m.Propagation
	if prop == "" {
		prop = mount.PropagationRPrivate
	}
	opts = append(opts, string(prop))
	if !m.RW {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts}
}

// Sort orders mount points so that a parent is mounted before what is
// mounted inside it, as Docker does, by the depth of the destination.
func Sort(mps []MountPoint) {
	sort.SliceStable(mps, func(i, j int) bool { return depth(mps[i].Destination) < depth(mps[j].Destination) })
}

func depth(p string) int { return len(strings.Split(path.Clean(p), "/")) }

func specError(spec, format string, args ...any) error {
	return errorf(ErrInvalidSpec, "invalid volume specification: '%s': %s", spec, fmt.Sprintf(format, args...))
}

// ParseBind reads one -v/--volume or HostConfig.Binds entry, as Docker's
// daemon does on Linux: SOURCE:DEST[:MODE] where SOURCE is an absolute
// host path (a bind mount; created when missing) or a volume name, or a
// lone DEST for an anonymous volume. MODE is a comma list of ro or rw,
// z or Z, a propagation (rprivate, shared, ...) and nocopy.
func ParseBind(spec string) (MountPoint, error) {
	parts := strings.Split(spec, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		if validMode(parts[1]) {
			// A mode on an anonymous volume (/data:ro) is refused by Docker.
			return MountPoint{}, specError(spec, "a mode needs a source")
		}
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return MountPoint{}, errorf(ErrInvalidSpec, "invalid spec: %s: too many colons", spec)
	}
	if spec == "" || dst == "" {
		return MountPoint{}, errorf(ErrInvalidSpec, "invalid empty volume spec")
	}
	m := MountPoint{Type: mount.TypeVolume, Source: src, Destination: dst, Mode: mode, RW: true}
	switch {
	case src == "":
		m.Anonymous = true
	case path.IsAbs(src):
		m.Type, m.Source, m.CreateSource = mount.TypeBind, path.Clean(src), true
	default:
		if !ValidName(src) {
			return MountPoint{}, nameError(src)
		}
		m.Name, m.Source = src, ""
	}
	if !path.IsAbs(dst) {
		return MountPoint{}, specError(spec, "invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", m.Type, dst)
	}
	if path.Clean(dst) == "/" {
		return MountPoint{}, errorf(ErrInvalidSpec, "invalid specification: destination can't be '/'")
	}
	m.Destination = path.Clean(dst)
	if mode != "" {
		if !validMode(mode) {
			return MountPoint{}, errorf(ErrInvalidSpec, "invalid mode: %s", mode)
		}
		for _, o := range strings.Split(mode, ",") {
			switch o {
			case "ro":
				m.RW = false
			case "nocopy":
				if m.Type != mount.TypeVolume {
					return MountPoint{}, errorf(ErrInvalidSpec, "invalid mode: %s: nocopy is for volumes", mode)
				}
				m.NoCopy = true
			default:
				if isPropagation(o) {
					if m.Type != mount.TypeBind {
						return MountPoint{}, errorf(ErrInvalidSpec, "invalid mode: %s: propagation is for bind mounts", mode)
					}
					m.Propagation = mount.Propagation(o)
				}
			}
		}
	}
	if m.Type == mount.TypeBind && m.Propagation == "" {
		m.Propagation = mount.PropagationRPrivate
	}
	return m, nil
}

// validMode reports whether s is a -v mode: each comma-separated part
// known, and at most one of each kind.
func validMode(s string) bool {
	if s == "" {
		return false
	}
	var rw, label, prop, copy int
	for _, o := range strings.Split(s, ",") {
		switch {
		case o == "ro" || o == "rw":
			rw++
		case o == "z" || o == "Z":
			label++
		case o == "nocopy":
			copy++
		case isPropagation(o):
			prop++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && copy <= 1
}

func isPropagation(s string) bool {
	for _, p := range mount.Propagations {
		if string(p) == s {
			return true
		}
	}
	return false
}

// FromAPI checks one HostConfig.Mounts entry (what --mount sends) as
// Docker's daemon does, and turns it into a mount point.
func FromAPI(m mount.Mount) (MountPoint, error) {
	bad := func(format string, args ...any) error {
		return errorf(ErrInvalidSpec, "invalid mount config for type %q: %s", m.Type, fmt.Sprintf(format, args...))
	}
	if m.Target == "" {
		return MountPoint{}, bad("field Target must not be empty")
	}
	if !path.IsAbs(m.Target) {
		return MountPoint{}, bad("invalid mount path: '%s' mount path must be absolute", m.Target)
	}
	if path.Clean(m.Target) == "/" {
		return MountPoint{}, bad("invalid specification: destination can't be '/'")
	}
	mp := MountPoint{Type: m.Type, Destination: path.Clean(m.Target), RW: !m.ReadOnly}
	if m.ReadOnly {
		mp.Mode = "ro"
	}
	switch m.Type {
	case mount.TypeBind:
		if m.VolumeOptions != nil || m.TmpfsOptions != nil {
			return MountPoint{}, bad("only BindOptions may be given")
		}
		if m.Source == "" {
			return MountPoint{}, bad("field Source must not be empty")
		}
		if !path.IsAbs(m.Source) {
			return MountPoint{}, bad("invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		mp.Source = path.Clean(m.Source)
		mp.Propagation = mount.PropagationRPrivate
		if o := m.BindOptions; o != nil {
			if o.Propagation != "" {
				if !isPropagation(string(o.Propagation)) {
					return MountPoint{}, bad("invalid propagation mode: %s", o.Propagation)
				}
				mp.Propagation = o.Propagation
			}
			mp.NonRecursive = o.NonRecursive
			mp.CreateSource = o.CreateMountpoint
		}
		if !mp.CreateSource {
			if _, err := os.Stat(mp.Source); err != nil {
				return MountPoint{}, bad("bind source path does not exist: %s", mp.Source)
			}
		}
	case mount.TypeVolume:
		if m.BindOptions != nil || m.TmpfsOptions != nil {
			return MountPoint{}, bad("only VolumeOptions may be given")
		}
		if m.Source == "" {
			mp.Anonymous = true
		} else if !ValidName(m.Source) {
			return MountPoint{}, nameError(m.Source)
		}
		mp.Name = m.Source
		if o := m.VolumeOptions; o != nil {
			mp.NoCopy = o.NoCopy
			mp.Labels = o.Labels
			if o.Subpath != "" {
				return MountPoint{}, bad("volume subpaths are not supported")
			}
			if o.DriverConfig != nil {
				if o.DriverConfig.Name != "" && o.DriverConfig.Name != Driver {
					return MountPoint{}, errorf(ErrBadDriver, "create %s: error looking up volume plugin %s: plugin %q not found", m.Source, o.DriverConfig.Name, o.DriverConfig.Name)
				}
				if _, err := parseDriverOptions(m.Source, o.DriverConfig.Options); err != nil {
					return MountPoint{}, err
				}
				mp.DriverOptions = o.DriverConfig.Options
			}
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return MountPoint{}, bad("field Source must not be specified")
		}
		if m.BindOptions != nil || m.VolumeOptions != nil {
			return MountPoint{}, bad("only TmpfsOptions may be given")
		}
		var extra []string
		if o := m.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return MountPoint{}, bad("invalid tmpfs size %d", o.SizeBytes)
			}
			if o.SizeBytes > 0 {
				extra = append(extra, "size="+strconv.FormatInt(o.SizeBytes, 10))
			}
			if o.Mode != 0 {
				extra = append(extra, fmt.Sprintf("mode=%o", uint32(o.Mode&os.ModePerm)|unixSpecial(o.Mode)))
			}
			for _, kv := range o.Options {
				extra = append(extra, strings.Join(kv, "="))
			}
		}
		if m.ReadOnly {
			extra = append(extra, "ro")
		}
		opts, err := tmpfsOptions(extra)
		if err != nil {
			return MountPoint{}, bad("%v", err)
		}
		mp.Options = opts
	default:
		return MountPoint{}, errorf(ErrInvalidSpec, "mount type unknown: %q", m.Type)
	}
	return mp, nil
}

func unixSpecial(m os.FileMode) uint32 {
	var out uint32
	if m&os.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

// ParseTmpfs reads one --tmpfs or HostConfig.Tmpfs entry: DEST and its
// comma-separated mount options (size=64m, mode=1770, exec, ...), on top of
// Docker's defaults noexec, nosuid, nodev.
func ParseTmpfs(dest, options string) (MountPoint, error) {
	if !path.IsAbs(dest) {
		return MountPoint{}, errorf(ErrInvalidSpec, "invalid mount config for type \"tmpfs\": invalid mount path: '%s' mount path must be absolute", dest)
	}
	if path.Clean(dest) == "/" {
		return MountPoint{}, errorf(ErrInvalidSpec, "invalid specification: destination can't be '/'")
	}
	var extra []string
	if options != "" {
		extra = strings.Split(options, ",")
	}
	opts, err := tmpfsOptions(extra)
	if err != nil {
		return MountPoint{}, errorf(ErrInvalidSpec, "invalid tmpfs options %q for %s: %v", options, dest, err)
	}
	rw := true
	for _, o := range opts {
		if o == "ro" {
			rw = false
		}
	}
	return MountPoint{Type: mount.TypeTmpfs, Destination: path.Clean(dest), RW: rw, Mode: options, Options: opts}, nil
}

// tmpfsOptions merges the user's tmpfs options into Docker's defaults; a
// size takes Docker's units (64m).
func tmpfsOptions(extra []string) ([]string, error) {
	opposite := map[string]string{"exec": "noexec", "suid": "nosuid", "dev": "nodev", "noexec": "exec", "nosuid": "suid", "nodev": "dev"}
	set := map[string]bool{"noexec": true, "nosuid": true, "nodev": true}
	out := []string{}
	for _, o := range extra {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if k, v, ok := strings.Cut(o, "="); ok {
			switch k {
			case "size":
				n, err := units.RAMInBytes(v)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("invalid size %q", v)
				}
				o = "size=" + strconv.FormatInt(n, 10)
			case "mode":
				if _, err := strconv.ParseUint(v, 8, 32); err != nil {
					return nil, fmt.Errorf("invalid mode %q", v)
				}
			}
			out = append(out, o)
			continue
		}
		if opp, ok := opposite[o]; ok {
			delete(set, opp)
			set[o] = true
			continue
		}
		out = append(out, o)
	}
	var flags []string
	for o := range set {
		flags = append(flags, o)
	}
	sort.Strings(flags)
	return append(flags, out...), nil
}
