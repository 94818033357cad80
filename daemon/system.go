package daemon

import (
	"bufio"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/system"

	"github.com/fusebox/fusebox/api"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodGet, "/_ping", d.ping)
		r.Handle(http.MethodHead, "/_ping", d.ping)
		r.Handle(http.MethodGet, "/version", d.version)
		r.Handle(http.MethodGet, "/info", d.info)
	})
}

// InfoFiller adds a resource's part of GET /info (counts, driver status).
type InfoFiller func(d *Daemon, r *http.Request, info *system.Info) error

var infoFillers []InfoFiller

// AddInfo registers a contribution to GET /info; call it from init.
func AddInfo(f InfoFiller) { infoFillers = append(infoFillers, f) }

// ping answers HEAD and GET /_ping with the headers the docker CLI reads
// before every command.
func (d *Daemon) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Api-Version", api.APIVersion)
	h.Set("Ostype", runtime.GOOS)
	h.Set("Docker-Experimental", "false")
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Server", "fusebox/"+api.Version+" ("+runtime.GOOS+")")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("OK"))
	return err
}

// VersionResponse is what GET /version answers; `fusebox version` shows it.
func (d *Daemon) VersionResponse() system.VersionResponse {
	kernel := kernelVersion()
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "fusebox"},
		Version:       api.Version,
		APIVersion:    api.APIVersion,
		MinAPIVersion: api.MinAPIVersion,
		GitCommit:     "fusebox",
		GoVersion:     runtime.Version(),
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: kernel,
		BuildTime:     d.started.UTC().Format(time.RFC3339),
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: api.Version,
			Details: map[string]string{
				"ApiVersion":    api.APIVersion,
				"MinAPIVersion": api.MinAPIVersion,
				"GitCommit":     "fusebox",
				"GoVersion":     runtime.Version(),
				"Os":            runtime.GOOS,
				"Arch":          runtime.GOARCH,
				"KernelVersion": kernel,
				"BuildTime":     d.started.UTC().Format(time.ANSIC),
				"Experimental":  "false",
			},
		}},
	}
}

func (d *Daemon) version(w http.ResponseWriter, r *http.Request) error {
	return WriteJSON(w, http.StatusOK, d.VersionResponse())
}

func (d *Daemon) info(w http.ResponseWriter, r *http.Request) error {
	host, _ := os.Hostname()
	info := system.Info{
		ID:                 "fusebox",
		Driver:             "fusebox",
		DriverStatus:       [][2]string{{"Backing Filesystem", "FUSE (go-fuse v2)"}, {"Store", "Badger + object files"}},
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      cgroupVersion(),
		KernelVersion:      kernelVersion(),
		OperatingSystem:    osName(),
		OSVersion:          osRelease("VERSION_ID"),
		OSType:             runtime.GOOS,
		Architecture:       archName(),
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               runtime.NumCPU(),
		MemTotal:           memTotal(),
		DockerRootDir:      d.root,
		Name:               host,
		ServerVersion:      api.Version,
		NGoroutines:        runtime.NumGoroutine(),
		DefaultRuntime:     "runc",
		Runtimes:           map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: "runc"}}},
		Isolation:          "",
		Debug:              false,
		Labels:             []string{},
	}
	info.SecurityOptions, info.Warnings = securityInfo()
	info.Plugins.Volume = []string{"local"}
	info.Plugins.Network = []string{"bridge", "host", "none"}
	info.Plugins.Log = []string{"json-file"}
	info.Swarm.LocalNodeState = "inactive"
	for _, fill := range infoFillers {
		if err := fill(d, r, &info); err != nil {
			return err
		}
	}
	return WriteJSON(w, http.StatusOK, info)
}

func cgroupVersion() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "2"
	}
	return "1"
}

func archName() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

func osRelease(key string) string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && k == key {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

func osName() string {
	if n := osRelease("PRETTY_NAME"); n != "" {
		return n
	}
	return runtime.GOOS
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
