package daemon

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
	"github.com/moby/moby/api/types/system"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/fusebox/fusebox/launcher"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodPost, "/containers/create", d.containerCreate)
		r.Handle(http.MethodGet, "/containers/json", d.containerList)
		r.Handle(http.MethodPost, "/containers/prune", d.containerPrune)
		r.Handle(http.MethodGet, "/containers/{id}/json", d.containerInspect)
		r.Handle(http.MethodPost, "/containers/{id}/wait", d.containerWait)
		r.Handle(http.MethodPost, "/containers/{id}/kill", d.containerKill)
		r.Handle(http.MethodPost, "/containers/{id}/stop", d.containerStop)
		r.Handle(http.MethodPost, "/containers/{id}/pause", d.containerPause)
		r.Handle(http.MethodPost, "/containers/{id}/unpause", d.containerUnpause)
		r.Handle(http.MethodPost, "/containers/{id}/resize", d.containerResize)
		r.Handle(http.MethodPost, "/containers/{id}/rename", d.containerRename)
		r.Handle(http.MethodGet, "/containers/{id}/top", d.containerTop)
		r.Handle(http.MethodGet, "/containers/{id}/logs", d.containerLogs)
		r.Handle(http.MethodGet, "/containers/{id}/stats", d.containerStats)
		r.Handle(http.MethodDelete, "/containers/{id}", d.containerDelete)
	})
	AddInfo(func(d *Daemon, r *http.Request, info *system.Info) error {
		for _, c := range d.containers.all() {
			info.Containers++
			switch c.snapshot().State.Status {
			case container.StateRunning, container.StateRestarting:
				info.ContainersRunning++
			case container.StatePaused:
				info.ContainersPaused++
			default:
				info.ContainersStopped++
			}
		}
		return nil
	})
}

// defaultStopTimeout is Docker's grace period before SIGKILL, in seconds.
const defaultStopTimeout = 10

func (d *Daemon) containerCreate(w http.ResponseWriter, r *http.Request) error {
	var req container.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return BadParameterf("invalid JSON in create request: %v", err)
	}
	if req.Config == nil {
		req.Config = &container.Config{}
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	var eps map[string]*network.EndpointSettings
	if req.NetworkingConfig != nil {
		eps = req.NetworkingConfig.EndpointsConfig
	}
	ctx := withEndpoints(r.Context(), eps)
	id, name, warnings, err := d.CreateContainer(ctx, r.URL.Query().Get("name"), req.Config, req.HostConfig)
	if err != nil {
		return err
	}
	_ = name
	return WriteJSON(w, http.StatusCreated, container.CreateResponse{ID: id, Warnings: warnings})
}

// CreateContainer creates a container from an image, as POST
// /containers/create does: the image's config fills what cfg leaves out,
// the options are checked, and the record and state directory are made.
// Nothing is left behind when it fails.
func (d *Daemon) CreateContainer(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig) (id, gotName string, warnings []string, err error) {
	if cfg.Image == "" {
		return "", "", nil, BadParameterf("config cannot be empty in order to create a container")
	}
	imageID, _, err := d.ResolveImage(ctx, cfg.Image)
	if err != nil {
		return "", "", nil, err
	}
	_, img, err := d.imageConfig(ctx, imageID)
	if err != nil {
		return "", "", nil, err
	}
	if err := mergeImageConfig(cfg, img.Config.ImageConfig); err != nil {
		return "", "", nil, err
	}
	if err := validateHostConfig(hc); err != nil {
		return "", "", nil, err
	}
	if err := d.checkNetworkCreate(ctx, cfg, hc, endpointsOf(ctx)); err != nil {
		return "", "", nil, err
	}
	if cfg.StopSignal != "" {
		if _, err := parseSignalName(cfg.StopSignal); err != nil {
			return "", "", nil, BadParameterf("invalid stop signal: %s", cfg.StopSignal)
		}
	}
	args := append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if len(args) == 0 {
		return "", "", nil, BadParameterf("no command specified")
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	mps, err := d.planMounts(cfg, hc)
	if err != nil {
		return "", "", nil, err
	}
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		hc.PidsLimit = nil
	}

	s := d.containers
	id = newID()
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
	}
	gotName, err = s.reserveName(name, id)
	if err != nil {
		return "", "", nil, err
	}
	c := &ctr{
		rec: containerRecord{
			ID: id, Name: gotName, Created: time.Now().UTC(), ImageID: imageID,
			Config: cfg, HostConfig: hc, Path: args[0], Args: args[1:], Endpoints: endpointsOf(ctx),
			State: stateRecord{Status: container.StateCreated},
		},
		dir:     d.containerDir(id),
		exited:  make(chan struct{}),
		removed: make(chan struct{}),
		busy:    make(chan struct{}, 1),
	}
	close(c.exited)
	if err := os.MkdirAll(c.dir, 0o711); err != nil {
		s.releaseName(gotName, id)
		return "", "", nil, fmt.Errorf("create container dir: %w", err)
	}
	undoMounts, err := d.createMounts(ctx, id, c.dir, imageID, mps)
	if err != nil {
		s.releaseName(gotName, id)
		_ = os.RemoveAll(c.dir)
		return "", "", nil, err
	}
	if err := s.save(ctx, c); err != nil {
		undoMounts()
		s.releaseName(gotName, id)
		_ = os.RemoveAll(c.dir)
		return "", "", nil, err
	}
	s.mu.Lock()
	s.byID[id] = c
	s.mu.Unlock()
	d.emitContainer(c, events.ActionCreate, nil)
	return id, gotName, []string{}, nil
}

// mergeImageConfig fills cfg from the image's config as Docker does: a
// user Entrypoint drops the image's Cmd, the environments merge key by
// key with the user's winning, labels likewise.
func mergeImageConfig(cfg *container.Config, img imageConfigFields) error {
	if len(cfg.Entrypoint) == 0 {
		cfg.Entrypoint = img.Entrypoint
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = img.Cmd
		}
	} else if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		// --entrypoint "" clears the image's.
		cfg.Entrypoint = nil
	}
	cfg.Env = mergeEnv(img.Env, cfg.Env)
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if cfg.WorkingDir != "" && !filepath.IsAbs(cfg.WorkingDir) {
		return BadParameterf("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
	}
	if cfg.User == "" {
		cfg.User = img.User
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	if len(img.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range img.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	if len(img.ExposedPorts) > 0 {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		for p := range img.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	}
	for v := range img.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[v] = struct{}{}
	}
	return nil
}

// mergeEnv overlays extra on base key by key.
func mergeEnv(base, extra []string) []string {
	out := append([]string(nil), base...)
	idx := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// validateHostConfig checks the options fusebox acts on, with Docker's
// messages.
func validateHostConfig(hc *container.HostConfig) error {
	if hc.Memory != 0 && hc.Memory < 6*1024*1024 {
		return BadParameterf("Minimum memory limit allowed is 6MB")
	}
	if hc.CPUShares < 0 {
		return BadParameterf("invalid CPU shares (%d): value must be a positive integer", hc.CPUShares)
	}
	if hc.CpusetCpus != "" {
		if err := checkCpuset(hc.CpusetCpus); err != nil {
			return err
		}
	}
	if err := container.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return BadParameterf("%v", err)
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		return BadParameterf("can't create 'AutoRemove' container with restart policy")
	}
	if _, err := parseSecurityOpts(hc.SecurityOpt); err != nil {
		return err
	}
	return nil
}

// checkCpuset accepts a cpuset list whose CPUs all exist, with Docker's
// message otherwise.
func checkCpuset(s string) error {
	n := runtime.NumCPU()
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return BadParameterf("Invalid value %s for cpuset cpus", s)
		}
		if b >= n {
			return BadParameterf("Requested CPUs are not available - requested %s, available: 0-%d", s, n-1)
		}
	}
	return nil
}

func (d *Daemon) lookup(r *http.Request) (*ctr, error) {
	return d.containers.get(r.PathValue("id"))
}

func (d *Daemon) containerInspect(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, d.withLegacyNetwork(d.inspect(c, boolParam(r, "size"))))
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// inspect is a container in the shape of Docker's inspect.
func (d *Daemon) inspect(c *ctr, size bool) container.InspectResponse {
	rec := c.snapshot()
	c.mu.Lock()
	var execIDs []string
	c.mu.Unlock()
	d.containers.mu.Lock()
	for id, e := range d.containers.execs {
		if e.containerID == rec.ID {
			execIDs = append(execIDs, id)
		}
	}
	d.containers.mu.Unlock()
	st := rec.State
	hc := *rec.HostConfig
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	resp := container.InspectResponse{
		ID:      rec.ID,
		Created: fmtTime(rec.Created),
		Path:    rec.Path,
		Args:    append([]string{}, rec.Args...),
		State: &container.State{
			Status:     st.Status,
			Running:    st.Status == container.StateRunning || st.Status == container.StatePaused,
			Paused:     st.Status == container.StatePaused,
			Restarting: st.Status == container.StateRestarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Status == container.StateDead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  fmtTime(st.StartedAt),
			FinishedAt: fmtTime(st.FinishedAt),
		},
		Image:          rec.ImageID.String(),
		ResolvConfPath: filepath.Join(c.dir, launcher.ResolvConfFile),
		HostnamePath:   filepath.Join(c.dir, launcher.HostnameFile),
		HostsPath:      filepath.Join(c.dir, launcher.HostsFile),
		LogPath:        filepath.Join(c.dir, launcher.LogFile),
		Name:           "/" + rec.Name,
		RestartCount:   rec.RestartCount,
		Driver:         "fusebox",
		Platform:       "linux",
		ExecIDs:        execIDs,
		HostConfig:     &hc,
		GraphDriver: &storage.DriverData{Name: "fusebox", Data: map[string]string{
			"UpperDir":  filepath.Join(c.dir, "upper"),
			"WorkDir":   filepath.Join(c.dir, "work"),
			"MergedDir": filepath.Join(c.dir, "merged"),
		}},
		Mounts:          apiMounts(c.dir),
		Config:          rec.Config,
		NetworkSettings: d.networkSettings(rec),
	}
	if size {
		rw := dirSize(filepath.Join(c.dir, "upper"))
		resp.SizeRw = &rw
	}
	return resp
}

// dirSize is the apparent size of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// statusText is the STATUS column of ps: "Up 5 minutes", "Exited (0) 2
// seconds ago", "Created", "Up 3 seconds (Paused)", "Restarting (1) ...".
func statusText(st stateRecord) string {
	now := time.Now()
	switch st.Status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt))
	case container.StatePaused:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + " (Paused)"
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case container.StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	return "Created"
}

// commandText is the COMMAND column: the command line, quoted by ps.
func commandText(rec containerRecord) string {
	return strings.Join(append([]string{rec.Path}, rec.Args...), " ")
}

func (d *Daemon) containerList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	filters, err := parseFilterArgs(q.Get("filters"))
	if err != nil {
		return err
	}
	for k, vs := range filters {
		switch k {
		case "status":
			for _, v := range vs {
				if err := container.ValidateContainerState(container.ContainerState(v)); err != nil {
					return BadParameterf("invalid filter 'status=%s'", v)
				}
			}
		case "name", "id", "ancestor", "label", "exited", "before", "since", "volume":
		default:
			return BadParameterf("invalid filter '%s'", k)
		}
	}
	all := boolParam(r, "all")
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit > 0 || len(filters["status"]) > 0 || len(filters["exited"]) > 0 {
		all = true
	}
	size := boolParam(r, "size")
	out := []container.Summary{}
	for _, c := range d.containers.all() {
		rec := c.snapshot()
		running := rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused || rec.State.Status == container.StateRestarting
		if !all && !running {
			continue
		}
		if !d.matchContainer(r.Context(), rec, filters) {
			continue
		}
		s := container.Summary{
			ID:      rec.ID,
			Names:   []string{"/" + rec.Name},
			Image:   rec.Config.Image,
			ImageID: rec.ImageID.String(),
			Command: commandText(rec),
			Created: rec.Created.Unix(),
			Ports:   d.portSummary(rec),
			Labels:  rec.Config.Labels,
			State:   rec.State.Status,
			Status:  statusText(rec.State),
			Mounts:  apiMounts(c.dir),
		}
		s.HostConfig.NetworkMode = string(rec.HostConfig.NetworkMode)
		if size {
			s.SizeRw = dirSize(filepath.Join(c.dir, "upper"))
			if img, err := d.store.Image(r.Context(), rec.ImageID); err == nil {
				s.SizeRootFs = s.SizeRw + img.Size
			}
		}
		out = append(out, s)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return WriteJSON(w, http.StatusOK, out)
}

// matchContainer applies ps filters: status, name, id, ancestor, label,
// exited.
func (d *Daemon) matchContainer(ctx context.Context, rec containerRecord, f map[string][]string) bool {
	anyOf := func(vs []string, ok func(string) bool) bool {
		if len(vs) == 0 {
			return true
		}
		for _, v := range vs {
			if ok(v) {
				return true
			}
		}
		return false
	}
	if !anyOf(f["status"], func(v string) bool { return string(rec.State.Status) == v }) {
		return false
	}
	if !anyOf(f["name"], func(v string) bool {
		// Docker matches names as regular expressions, against "/name".
		if re, err := regexp.Compile(v); err == nil {
			return re.MatchString("/" + rec.Name)
		}
		return strings.Contains(rec.Name, strings.TrimPrefix(v, "/"))
	}) {
		return false
	}
	if !anyOf(f["id"], func(v string) bool { return strings.HasPrefix(rec.ID, v) }) {
		return false
	}
	if !anyOf(f["exited"], func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && rec.State.Status == container.StateExited && rec.State.ExitCode == n
	}) {
		return false
	}
	if !anyOf(f["ancestor"], func(v string) bool {
		if rec.Config.Image == v {
			return true
		}
		id, _, err := d.ResolveImage(ctx, v)
		return err == nil && id == rec.ImageID
	}) {
		return false
	}
	for _, l := range f["label"] {
		if !matchLabels([]string{l}, rec.Config.Labels) {
			return false
		}
	}
	if !anyOf(f["volume"], func(v string) bool { return usesVolume(d.containerDir(rec.ID), v) }) {
		return false
	}
	return true
}

func (d *Daemon) containerWait(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	c.mu.Lock()
	exited, removed := c.exited, c.removed
	status := c.rec.State.Status
	c.mu.Unlock()
	var ch <-chan struct{}
	switch cond {
	case "", container.WaitConditionNotRunning:
		if status == container.StateRunning || status == container.StatePaused || status == container.StateRestarting {
			ch = exited
		}
	case container.WaitConditionNextExit:
		select {
		case <-exited:
			// Not running now: wait for the exit after the next start.
			ch = d.nextExit(c)
		default:
			ch = exited
		}
	case container.WaitConditionRemoved:
		ch = removed
	default:
		return BadParameterf("invalid condition: %q", cond)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if ch != nil {
		select {
		case <-ch:
		case <-r.Context().Done():
			return nil
		}
	}
	rec := c.snapshot()
	resp := container.WaitResponse{StatusCode: int64(rec.State.ExitCode)}
	if rec.State.Error != "" {
		resp.Error = &container.WaitExitError{Message: rec.State.Error}
	}
	return json.NewEncoder(w).Encode(resp)
}

// nextExit returns a channel closed at the exit that follows the next
// start of a container that is not running now.
func (d *Daemon) nextExit(c *ctr) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		for {
			c.mu.Lock()
			ch, removed := c.exited, c.removed
			c.mu.Unlock()
			select {
			case <-ch:
			default:
				select {
				case <-ch:
				case <-removed:
				}
				return
			}
			select {
			case <-removed:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return out
}

// parseSignal reads a signal by name (KILL, SIGKILL) or number.
func parseSignal(s string, def syscall.Signal) (syscall.Signal, error) {
	if s == "" {
		return def, nil
	}
	sig, err := parseSignalName(s)
	if err != nil {
		return 0, BadParameterf("Invalid signal: %s", s)
	}
	return sig, nil
}

func (d *Daemon) containerKill(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	sig, err := parseSignal(r.URL.Query().Get("signal"), syscall.SIGKILL)
	if err != nil {
		return err
	}
	if err := d.KillContainer(r.Context(), c, sig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// KillContainer sends sig to a running container's command.
func (d *Daemon) KillContainer(ctx context.Context, c *ctr, sig syscall.Signal) error {
	c.mu.Lock()
	shim := c.shim
	running := c.rec.State.Status == container.StateRunning || c.rec.State.Status == container.StatePaused
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM || sig == syscall.SIGINT {
		c.rec.ManuallyStopped = true
	}
	id := c.rec.ID
	c.mu.Unlock()
	if !running || shim == nil {
		return errNotRunning(id)
	}
	d.emitContainer(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := shim.Signal(ctx, sig); err != nil {
		if errors.Is(err, launcher.ErrNotRunning) || errors.Is(err, launcher.ErrShimGone) {
			return errNotRunning(id)
		}
		return err
	}
	if sig == syscall.SIGKILL {
		// Docker answers a SIGKILL once the container is gone.
		c.mu.Lock()
		ch := c.exited
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	return nil
}

func stopTimeout(r *http.Request, rec containerRecord) (time.Duration, error) {
	secs := defaultStopTimeout
	if rec.Config.StopTimeout != nil {
		secs = *rec.Config.StopTimeout
	}
	if t := r.URL.Query().Get("t"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return 0, BadParameterf("invalid value for t: %s", t)
		}
		secs = n
	}
	if secs < 0 {
		return 365 * 24 * time.Hour, nil
	}
	return time.Duration(secs) * time.Second, nil
}

// lockForStop resolves the container a stop or restart request names, the
// signal and timeout to stop it with, and takes its lifecycle lock; the
// caller unlocks.
func (d *Daemon) lockForStop(r *http.Request) (*ctr, syscall.Signal, time.Duration, error) {
	c, err := d.lookup(r)
	if err != nil {
		return nil, 0, 0, err
	}
	rec := c.snapshot()
	timeout, err := stopTimeout(r, rec)
	if err != nil {
		return nil, 0, 0, err
	}
	sig, err := d.stopSignal(r, rec)
	if err != nil {
		return nil, 0, 0, err
	}
	if err := c.lock(r.Context()); err != nil {
		return nil, 0, 0, err
	}
	return c, sig, timeout, nil
}

func (d *Daemon) containerStop(w http.ResponseWriter, r *http.Request) error {
	c, sig, timeout, err := d.lockForStop(r)
	if err != nil {
		return err
	}
	defer c.unlock()
	if d.cancelRestart(r.Context(), c) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if !c.running() {
		return errNotModified
	}
	if err := d.stop(r.Context(), c, sig, timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopSignal is the query's signal, else the container's stop signal,
// else SIGTERM.
func (d *Daemon) stopSignal(r *http.Request, rec containerRecord) (syscall.Signal, error) {
	def := syscall.SIGTERM
	if rec.Config.StopSignal != "" {
		if s, err := parseSignalName(rec.Config.StopSignal); err == nil {
			def = s
		}
	}
	return parseSignal(r.URL.Query().Get("signal"), def)
}

// cancelRestart stops a container that waits out its restart back-off, as
// Docker does: the pending restart is dropped and the container stays
// exited. It reports whether the container was waiting. The caller holds
// c's lifecycle lock, which the pending restart needs too.
func (d *Daemon) cancelRestart(ctx context.Context, c *ctr) bool {
	c.mu.Lock()
	waiting := c.rec.State.Status == container.StateRestarting && c.shim == nil
	if waiting {
		c.rec.ManuallyStopped = true
		c.rec.State.Status = container.StateExited
	}
	c.mu.Unlock()
	if !waiting {
		return false
	}
	if err := d.containers.save(ctx, c); err != nil {
		d.log.Warn("save container", "id", c.snapshot().ID, "err", err)
	}
	d.emitContainer(c, "stop", nil)
	return true
}

// stop sends sig, SIGKILL after timeout, and returns once the daemon has
// seen the exit. The caller holds c's lifecycle lock.
func (d *Daemon) stop(ctx context.Context, c *ctr, sig syscall.Signal, timeout time.Duration) error {
	c.mu.Lock()
	c.rec.ManuallyStopped = true
	shim, exited := c.shim, c.exited
	c.mu.Unlock()
	if shim == nil {
		return nil
	}
	d.emitContainer(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	if _, err := shim.Stop(ctx, sig, timeout); err != nil && !errors.Is(err, launcher.ErrShimGone) && !errors.Is(err, launcher.ErrNotRunning) {
		return err
	}
	select {
	case <-exited:
	case <-ctx.Done():
		return ctx.Err()
	}
	d.emitContainer(c, "stop", nil)
	return nil
}

func (d *Daemon) containerPause(w http.ResponseWriter, r *http.Request) error {
	return d.pauseOrResume(w, r, true)
}

func (d *Daemon) containerUnpause(w http.ResponseWriter, r *http.Request) error {
	return d.pauseOrResume(w, r, false)
}

func (d *Daemon) pauseOrResume(w http.ResponseWriter, r *http.Request, pause bool) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.rec.State.Status
	switch {
	case st != container.StateRunning && st != container.StatePaused:
		return errNotRunning(c.rec.ID)
	case pause && st == container.StatePaused:
		return Conflictf("Container %s is already paused", c.rec.ID)
	case !pause && st != container.StatePaused:
		return Conflictf("Container %s is not paused", c.rec.ID)
	}
	action := events.ActionPause
	if pause {
		err = c.shim.Pause(r.Context())
		c.rec.State.Status = container.StatePaused
	} else {
		err = c.shim.Resume(r.Context())
		c.rec.State.Status = container.StateRunning
		action = events.ActionUnPause
	}
	if err != nil {
		c.rec.State.Status = st
		return err
	}
	c.mu.Unlock()
	_ = d.containers.save(r.Context(), c)
	d.emitContainer(c, action, nil)
	c.mu.Lock()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (d *Daemon) containerResize(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return BadParameterf("invalid resize: h and w must be numbers")
	}
	c.mu.Lock()
	shim := c.shim
	c.mu.Unlock()
	if shim == nil {
		return errNotRunning(c.snapshot().ID)
	}
	if err := shim.Resize(r.Context(), uint16(wd), uint16(h)); err != nil && !errors.Is(err, launcher.ErrNoTTY) {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (d *Daemon) containerRename(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	newName := r.URL.Query().Get("name")
	if newName == "" {
		return BadParameterf("Neither old nor new names may be empty")
	}
	rec := c.snapshot()
	if strings.TrimPrefix(newName, "/") == rec.Name {
		return Conflictf("Renaming a container with the same name as its current name")
	}
	got, err := d.containers.reserveName(newName, rec.ID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	old := c.rec.Name
	c.rec.Name = got
	c.mu.Unlock()
	if err := d.containers.save(r.Context(), c); err != nil {
		c.mu.Lock()
		c.rec.Name = old
		c.mu.Unlock()
		d.containers.releaseName(got, rec.ID)
		return err
	}
	d.containers.releaseName(old, rec.ID)
	d.emitContainer(c, events.ActionRename, map[string]string{"oldName": "/" + old})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (d *Daemon) containerTop(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	c.mu.Lock()
	shim := c.shim
	running := c.rec.State.Status == container.StateRunning || c.rec.State.Status == container.StatePaused
	c.mu.Unlock()
	if !running || shim == nil {
		return errNotRunning(c.snapshot().ID)
	}
	pids, err := shim.Processes(r.Context())
	if err != nil {
		return err
	}
	args := strings.Fields(r.URL.Query().Get("ps_args"))
	if len(args) == 0 {
		args = []string{"-ef"}
	}
	resp, err := psTable(r.Context(), args, pids)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, resp)
}

// psTable runs the host's ps with args and keeps the rows of pids, as
// Docker's top does.
func psTable(ctx context.Context, args []string, pids []int) (container.TopResponse, error) {
	out, err := exec.CommandContext(ctx, "ps", args...).Output()
	if err != nil {
		return container.TopResponse{}, BadParameterf("Error running ps: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	titles := strings.Fields(lines[0])
	col := -1
	for i, t := range titles {
		if t == "PID" {
			col = i
		}
	}
	if col < 0 {
		return container.TopResponse{}, BadParameterf("Couldn't find PID field in ps output")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	resp := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= col {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil || !want[pid] {
			continue
		}
		// The last column (the command) keeps its spaces.
		row := append([]string(nil), f[:len(titles)-1]...)
		row = append(row, strings.Join(f[len(titles)-1:], " "))
		resp.Processes = append(resp.Processes, row)
	}
	return resp, nil
}

// writeMux writes one frame of Docker's multiplexed stream.
func writeMux(w io.Writer, stream byte, p []byte) error {
	var h [8]byte
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

// streamContentType is the attach and logs content type: raw with a tty,
// multiplexed otherwise (named so from API 1.42).
func streamContentType(r *http.Request, tty bool) string {
	if tty || versionLess(RequestAPIVersion(r), "1.42") {
		return "application/vnd.docker.raw-stream"
	}
	return "application/vnd.docker.multiplexed-stream"
}

func (d *Daemon) containerLogs(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	stdout, stderr := boolParam(r, "stdout"), boolParam(r, "stderr")
	if !stdout && !stderr {
		return BadParameterf("Bad parameters: you must choose at least one stream")
	}
	opts := launcher.LogOptions{Tail: -1, Follow: boolParam(r, "follow")}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return BadParameterf("invalid value for tail: %s", t)
		}
		opts.Tail = n
	}
	if opts.Since, err = parseEventTime(q.Get("since")); err != nil {
		return err
	}
	if opts.Until, err = parseEventTime(q.Get("until")); err != nil {
		return err
	}
	if q.Get("since") == "0" {
		opts.Since = time.Time{}
	}
	rec := c.snapshot()
	if opts.Follow {
		c.mu.Lock()
		running := c.rec.State.Status == container.StateRunning || c.rec.State.Status == container.StatePaused || c.rec.State.Status == container.StateRestarting
		done := c.exited
		c.mu.Unlock()
		if !running {
			closed := make(chan struct{})
			close(closed)
			done = closed
		}
		opts.Done = done
	}
	timestamps := boolParam(r, "timestamps")
	tty := rec.Config.Tty
	w.Header().Set("Content-Type", streamContentType(r, tty))
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	err = launcher.ReadLogs(r.Context(), filepath.Join(c.dir, launcher.LogFile), opts, func(e launcher.LogEntry) error {
		stream := byte(1)
		if e.Stream == "stderr" {
			if !stderr {
				return nil
			}
			stream = 2
		} else if !stdout {
			return nil
		}
		b := e.Bytes(timestamps)
		var err error
		if tty {
			_, err = w.Write(b)
		} else {
			err = writeMux(w, stream, b)
		}
		if fl != nil && opts.Follow {
			fl.Flush()
		}
		return err
	})
	if err != nil && r.Context().Err() == nil {
		d.log.Warn("logs", "id", rec.ID, "err", err)
	}
	return nil
}

func (d *Daemon) containerStats(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	stream := r.URL.Query().Get("stream") == "" || boolParam(r, "stream")
	oneShot := boolParam(r, "one-shot")
	sample := func() (container.StatsResponse, bool) {
		rec := c.snapshot()
		c.mu.Lock()
		shim := c.shim
		c.mu.Unlock()
		resp := container.StatsResponse{Name: "/" + rec.Name, ID: rec.ID, Read: time.Now().UTC()}
		if shim == nil {
			return resp, false
		}
		st, err := shim.Stats(r.Context())
		if err != nil {
			return resp, false
		}
		resp.Read = st.Read
		resp.CPUStats = container.CPUStats{
			CPUUsage: container.CPUUsage{
				TotalUsage: st.CPUTotal, PercpuUsage: st.PerCPU,
				UsageInKernelmode: st.CPUKernel, UsageInUsermode: st.CPUUser,
			},
			SystemUsage: systemCPUUsage(),
			OnlineCPUs:  uint32(runtime.NumCPU()),
		}
		resp.MemoryStats = container.MemoryStats{Usage: st.MemoryUsage, MaxUsage: st.MemoryMax, Limit: st.MemoryLimit, Stats: st.MemoryDetails}
		if resp.MemoryStats.Limit == 0 || resp.MemoryStats.Limit > uint64(memTotal()) {
			resp.MemoryStats.Limit = uint64(memTotal())
		}
		resp.PidsStats = container.PidsStats{Current: st.PidsCurrent, Limit: st.PidsLimit}
		for _, b := range st.Blkio {
			resp.BlkioStats.IoServiceBytesRecursive = append(resp.BlkioStats.IoServiceBytesRecursive,
				container.BlkioStatEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
		}
		if hc := rec.HostConfig; hc == nil || (!hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer()) {
			resp.Networks = netnsStats(shim.Pid())
		}
		return resp, true
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	prev, _ := sample()
	if !stream {
		if !oneShot {
			select {
			case <-time.After(500 * time.Millisecond):
			case <-r.Context().Done():
				return nil
			}
			cur, _ := sample()
			cur.PreRead, cur.PreCPUStats = prev.Read, prev.CPUStats
			prev = cur
		}
		w.WriteHeader(http.StatusOK)
		return enc.Encode(prev)
	}
	w.WriteHeader(http.StatusOK)
	c.mu.Lock()
	removed := c.removed
	c.mu.Unlock()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var pre container.StatsResponse
	cur := prev
	for {
		cur.PreRead, cur.PreCPUStats = pre.Read, pre.CPUStats
		if err := enc.Encode(cur); err != nil {
			return nil
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// A removed container's stream ends, as Docker's does, so that
		// the CLI stops showing it.
		select {
		case <-tick.C:
		case <-removed:
			return nil
		case <-r.Context().Done():
			return nil
		}
		pre = cur
		cur, _ = sample()
	}
}

// netnsStats is the traffic of the interfaces in the network namespace of
// process pid, from its /proc/<pid>/net/dev, by interface name, as Docker
// reports a container's networks; the loopback is left out as Docker
// leaves it out (it counts only the interfaces it gave the container). Nil
// when the process is gone.
func netnsStats(pid int) map[string]container.NetworkStats {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	nets := map[string]container.NetworkStats{}
	for _, line := range strings.Split(string(b), "\n") {
		name, counters, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" {
			continue
		}
		// Receive: bytes packets errs drop fifo frame compressed multicast;
		// transmit: bytes packets errs drop fifo colls carrier compressed.
		f := strings.Fields(counters)
		if len(f) < 16 {
			continue
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		nets[name] = container.NetworkStats{
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11],
		}
	}
	return nets
}

// systemCPUUsage is the host's total CPU time in ns, from /proc/stat, for
// the CPU percentage the CLI computes.
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[0] == "cpu" {
			var total uint64
			for _, v := range fields[1:8] {
				n, _ := strconv.ParseUint(v, 10, 64)
				total += n
			}
			return total * 1e9 / 100 // USER_HZ is 100 on Linux
		}
	}
	return 0
}

func (d *Daemon) containerDelete(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if boolParam(r, "v") {
		ctx = withRemoveVolumes(ctx)
	}
	if err := d.RemoveContainer(ctx, c, boolParam(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// RemoveContainer deletes a container: its record, name, state directory
// (writable layer and log included). A running container is refused
// unless force, which kills it first.
func (d *Daemon) RemoveContainer(ctx context.Context, c *ctr, force bool) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	rec := c.snapshot()
	c.mu.Lock()
	if c.removing {
		c.mu.Unlock()
		return Conflictf("removal of container %s is already in progress", rec.ID)
	}
	c.mu.Unlock()
	if c.running() || rec.State.Status == container.StateRestarting {
		if !force {
			state := "running"
			if rec.State.Status == container.StatePaused {
				return Conflictf("cannot remove container \"/%s\": container is paused and must be unpaused first", rec.Name)
			}
			return Conflictf("cannot remove container \"/%s\": container is %s: stop the container before removing or force remove", rec.Name, state)
		}
		if err := d.stop(ctx, c, syscall.SIGKILL, 0); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.removing = true
	c.rec.State.Status = container.StateRemoving
	m := c.mount
	c.mount = nil
	c.mu.Unlock()
	// An --rm container's record goes after its removal is reported too
	// (below): the synced delete is off `run --rm`'s path. A record left
	// by a failed delete or a daemon that died says running (an --rm
	// container's exit is not saved, see supervise), and recovery at the
	// next start removes it (recoverContainer).
	lateDelete := rec.HostConfig.AutoRemove && rec.State.Status != container.StateCreated
	if !lateDelete {
		if err := d.containers.delete(context.WithoutCancel(ctx), c); err != nil {
			c.mu.Lock()
			c.removing = false
			c.rec.State.Status = container.StateDead
			c.mount = m
			c.mu.Unlock()
			return err
		}
	}
	d.releaseMounts(ctx, rec, c.dir)
	// The rootfs and the state directory go after the removal is reported:
	// nothing reaches them once the record is gone, and a `run --rm` need
	// not wait for a FUSE unmount. A daemon that dies first removes the
	// directory at its next start (removeOrphanDirs).
	d.containers.wg.Add(1)
	go func() {
		defer d.containers.wg.Done()
		if lateDelete {
			if err := d.containers.delete(context.Background(), c); err != nil {
				d.log.Warn("delete container record", "id", rec.ID, "err", err)
			}
		}
		if m != nil {
			if err := m.Unmount(); err != nil {
				d.log.Warn("unmount container rootfs", "id", rec.ID, "err", err)
			}
		}
		d.removeContainerDir(rec.ID, c.dir)
	}()
	s := d.containers
	s.mu.Lock()
	delete(s.byID, rec.ID)
	for id, e := range s.execs {
		if e.containerID == rec.ID {
			delete(s.execs, id)
		}
	}
	s.mu.Unlock()
	s.releaseName(rec.Name, rec.ID)
	d.emitContainer(c, events.ActionDestroy, nil)
	close(c.removed)
	return nil
}

func (d *Daemon) containerPrune(w http.ResponseWriter, r *http.Request) error {
	filters, err := parseFilterArgs(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	var until time.Time
	for _, v := range filters["until"] {
		if until, err = parseUntil(v); err != nil {
			return err
		}
	}
	report := container.PruneReport{ContainersDeleted: []string{}}
	for _, c := range d.containers.all() {
		rec := c.snapshot()
		if rec.State.Status != container.StateExited && rec.State.Status != container.StateCreated && rec.State.Status != container.StateDead {
			continue
		}
		if !until.IsZero() && rec.Created.After(until) {
			continue
		}
		ok := true
		for _, l := range filters["label"] {
			ok = ok && matchLabels([]string{l}, rec.Config.Labels)
		}
		if !ok {
			continue
		}
		size := dirSize(filepath.Join(c.dir, "upper"))
		if err := d.RemoveContainer(r.Context(), c, false); err != nil {
			continue
		}
		report.ContainersDeleted = append(report.ContainersDeleted, rec.ID)
		report.SpaceReclaimed += uint64(size)
	}
	d.Emit(events.ContainerEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)})
	return WriteJSON(w, http.StatusOK, report)
}

// parseUntil reads a prune "until" filter: a timestamp or a duration ago.
func parseUntil(v string) (time.Time, error) {
	if dur, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-dur), nil
	}
	return parseEventTime(v)
}

// unmountStale detaches whatever is still mounted at dir (a FUSE mount
// whose server died with the previous daemon).
func unmountStale(dir string) {
	for range 4 {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return
		}
	}
}

// imageConfigFields is the part of an image's config a container inherits.
type imageConfigFields = ocispec.ImageConfig

// parseSignalName reads a signal as Docker accepts it: a number, or a name
// with or without the SIG prefix, in any case.
func parseSignalName(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal: %s", s)
}
