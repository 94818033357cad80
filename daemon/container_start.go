package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/fusebox/fusebox/launcher"
)

func init() {
	AddRoutes(func(d *Daemon, r *Router) {
		r.Handle(http.MethodPost, "/containers/{id}/start", d.containerStart)
		r.Handle(http.MethodPost, "/containers/{id}/restart", d.containerRestart)
		d.containers.wg.Add(1)
		go func() {
			defer d.containers.wg.Done()
			d.autostartContainers()
		}()
	})
}

func (d *Daemon) containerStart(w http.ResponseWriter, r *http.Request) error {
	c, err := d.lookup(r)
	if err != nil {
		return err
	}
	if err := c.lock(r.Context()); err != nil {
		return err
	}
	defer c.unlock()
	if err := d.startContainer(context.WithoutCancel(r.Context()), c); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (d *Daemon) containerRestart(w http.ResponseWriter, r *http.Request) error {
	c, sig, timeout, err := d.lockForStop(r)
	if err != nil {
		return err
	}
	defer c.unlock()
	if c.running() {
		if err := d.stop(r.Context(), c, sig, timeout); err != nil {
			return err
		}
	}
	if err := d.startContainer(context.WithoutCancel(r.Context()), c); err != nil {
		return err
	}
	d.emitContainer(c, events.ActionRestart, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// startContainer mounts the container's rootfs, starts its shim, connects
// the attaches that were waiting, lets the command run and supervises it.
// The caller holds c's lifecycle lock. A failure leaves the container
// exited with Docker's exit code for it (127 not found, 126 not runnable,
// 125 otherwise) and nothing mounted.
func (d *Daemon) startContainer(ctx context.Context, c *ctr) (err error) {
	c.mu.Lock()
	rec := c.rec
	removing := c.removing
	c.mu.Unlock()
	switch {
	case removing:
		return Conflictf("container %s is marked for removal and cannot be started", rec.ID)
	case rec.State.Status == container.StateRunning || rec.State.Status == container.StatePaused:
		return errNotModified
	}
	var m *ImageMount
	supervised := false
	t0 := time.Now()
	var tMount, tSpec, tShim time.Time
	defer func() {
		if err == nil {
			d.log.Debug("container start", "id", rec.ID, "mount", tMount.Sub(t0), "spec", tSpec.Sub(tMount),
				"shim", tShim.Sub(tSpec), "begin", time.Since(tShim))
			return
		}
		if !supervised {
			// Once supervised, the supervisor undoes the start.
			if m != nil {
				if uerr := m.Unmount(); uerr != nil {
					d.log.Warn("unmount after failed start", "id", rec.ID, "err", uerr)
				}
			}
			d.unmountVolumes(rec.ID)
		}
		d.failStart(ctx, c, err)
	}()
	m, err = d.Mount(ctx, MountSpec{Image: rec.ImageID, Target: filepath.Join(c.dir, "merged"), StateDir: c.dir})
	if err != nil {
		return fmt.Errorf("mount container rootfs: %w", err)
	}
	tMount = time.Now()
	ns, err := d.setupNetwork(ctx, c)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && !supervised {
			d.teardownNetwork(ctx, rec.ID)
		}
	}()
	spec, err := d.containerSpec(rec, c.dir, m.Target, ns.netns)
	if err != nil {
		return err
	}
	sdir, err := d.shimDir(c)
	if err != nil {
		return err
	}
	cfg := launcher.Config{ID: rec.ID, StateDir: sdir, Spec: spec, OpenStdin: rec.Config.OpenStdin, Exe: d.cfg.Exe,
		Hosts: ns.hosts, ResolvConf: ns.resolv}
	// The rootfs's names warm in the kernel while the shim starts, which
	// takes longer; waited for before anything could unmount the rootfs.
	prefetched := make(chan struct{})
	go func() {
		defer close(prefetched)
		launcher.Prefetch(ctx, spec)
	}()
	defer func() { <-prefetched }()
	tSpec = time.Now()
	shim, err := launcher.Start(ctx, cfg)
	if err != nil {
		return startFailure(err)
	}
	tShim = time.Now()
	exited := make(chan struct{})
	// The record says running before the command may run and before its
	// supervisor may record the exit: a command that exits at once must
	// never have its exit overwritten by this start (a container that ran
	// `true` then showed as running for ever).
	c.mu.Lock()
	c.shim, c.mount, c.exited = shim, m, exited
	attaches := c.attaches
	c.attaches = nil
	c.rec.State = stateRecord{Status: container.StateRunning, Pid: shim.Pid(), StartedAt: time.Now().UTC()}
	c.rec.ManuallyStopped = false
	c.mu.Unlock()
	d.emitContainer(c, events.ActionStart, nil)
	for _, a := range attaches {
		if err := a.connect(shim); err != nil {
			a.done <- err
		}
	}
	d.containers.wg.Add(1)
	go d.supervise(c, shim, exited)
	supervised = true
	berr := shim.Begin(ctx)
	// Saved after the command was let go, off the path to its exec (the
	// write syncs the store): saves of a record are ordered (ctr.saveMu),
	// so a supervisor that records an exit meanwhile is not undone.
	if err := d.containers.save(ctx, c); err != nil {
		d.log.Warn("save container", "id", rec.ID, "err", err)
	}
	if berr != nil {
		_ = shim.Signal(ctx, syscall.SIGKILL)
		return fmt.Errorf("start container: %w", berr)
	}
	if d.net != nil {
		// The next start on the default network takes a spare sandbox
		// made now, after this one's start rather than beside it.
		d.net.Refill()
	}
	return nil
}

// startFailure words a shim start error as Docker does, so that the docker
// CLI picks exit code 127 or 126 from its text.
func startFailure(err error) error {
	var se *launcher.StartError
	if errors.As(err, &se) {
		return fmt.Errorf("failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: %w", err)
	}
	return err
}

// failStart records a start that failed, and releases whoever waited for
// the start: attaches and next-exit waits.
func (d *Daemon) failStart(ctx context.Context, c *ctr, err error) {
	c.mu.Lock()
	if c.shim != nil {
		// The shim started; its supervisor records the exit.
		c.mu.Unlock()
		return
	}
	c.rec.State.Status = container.StateExited
	c.rec.State.ExitCode = launcher.ExitCode(err)
	c.rec.State.Error = err.Error()
	c.rec.State.FinishedAt = time.Now().UTC()
	attaches := c.attaches
	c.attaches = nil
	exited := make(chan struct{})
	c.exited = exited
	auto := c.rec.HostConfig.AutoRemove
	c.mu.Unlock()
	close(exited)
	for _, a := range attaches {
		a.done <- err
	}
	_ = d.containers.save(ctx, c)
	d.emitContainer(c, events.ActionDie, map[string]string{"exitCode": fmt.Sprint(c.snapshot().State.ExitCode)})
	if auto {
		go func() { _ = d.RemoveContainer(context.Background(), c, true) }()
	}
}

// containerSpec turns a container's record into its runtime spec, with
// the user resolved against the mounted rootfs.
func (d *Daemon) containerSpec(rec containerRecord, dir, rootfs, netns string) (*specs.Spec, error) {
	u, err := launcher.ResolveUser(rootfs, rec.Config.User)
	if err != nil {
		return nil, err
	}
	hc := rec.HostConfig
	o := launcher.Options{
		ID: rec.ID, Rootfs: rootfs, StateDir: dir,
		Args: append([]string{rec.Path}, rec.Args...),
		Env:  rec.Config.Env, Cwd: rec.Config.WorkingDir, User: u,
		Hostname: rec.Config.Hostname, Tty: rec.Config.Tty,
		Memory: hc.Memory, CpusetCpus: hc.CpusetCpus,
		Privileged: hc.Privileged, ReadOnly: hc.ReadonlyRootfs,
	}
	if hc.CPUShares > 0 {
		o.CPUShares = uint64(hc.CPUShares)
	}
	if hc.PidsLimit != nil {
		o.PidsLimit = *hc.PidsLimit
	}
	if hc.ConsoleSize[0] > 0 && hc.ConsoleSize[1] > 0 {
		o.ConsoleHeight, o.ConsoleWidth = uint16(hc.ConsoleSize[0]), uint16(hc.ConsoleSize[1])
	}
	o.NetNS = netns
	so, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	o.Seccomp, o.NoNewPrivileges = so.seccomp, so.noNewPrivileges
	if hc.Init != nil && *hc.Init {
		o.Init = true
	}
	if o.Mounts, err = d.mountSpecs(context.Background(), rec.ID, dir); err != nil {
		return nil, err
	}
	return launcher.BuildSpec(o)
}

// supervise waits for the container's command to end, then unmounts its
// rootfs (no process of the container is left by then), records the exit
// and applies --rm and the restart policy.
func (d *Daemon) supervise(c *ctr, shim *launcher.Shim, exited chan struct{}) {
	defer d.containers.wg.Done()
	ctx := context.Background()
	st, err := shim.Wait(ctx)
	if err != nil {
		st = launcher.ExitStatus{ExitCode: 128 + int(syscall.SIGKILL), Finished: time.Now().UTC(), Error: err.Error()}
	}
	t0 := time.Now()
	c.mu.Lock()
	m := c.mount
	c.shim = nil
	// An --rm container's rootfs goes with the container, after its
	// removal is reported (RemoveContainer); any other is unmounted before
	// the exit is, so that diff, commit and a new start see it settled.
	autoRemove := c.rec.HostConfig.AutoRemove
	if !autoRemove {
		c.mount = nil
	}
	c.mu.Unlock()
	if m != nil && !autoRemove {
		if err := m.Unmount(); err != nil {
			d.log.Warn("unmount container rootfs", "id", c.snapshot().ID, "err", err)
		}
	}
	d.unmountVolumes(c.snapshot().ID)
	d.teardownNetwork(ctx, c.snapshot().ID)
	tUnmount := time.Now()
	c.mu.Lock()
	ran := st.Finished.Sub(c.rec.State.StartedAt)
	c.rec.State.Status = container.StateExited
	c.rec.State.Pid = 0
	c.rec.State.ExitCode = st.ExitCode
	c.rec.State.Error = st.Error
	c.rec.State.OOMKilled = st.OOMKilled
	c.rec.State.FinishedAt = st.Finished
	restart := shouldRestart(c.rec)
	if restart {
		c.rec.State.Status = container.StateRestarting
	}
	auto := c.rec.HostConfig.AutoRemove
	c.mu.Unlock()
	// An --rm container's record is deleted right below: saving it first
	// would cost a synced write on every `run --rm`. Should the daemon die
	// in between, start-up finds it running and auto-remove, and removes it.
	if !auto {
		_ = d.containers.save(ctx, c)
	}
	tSave := time.Now()
	if st.OOMKilled {
		d.emitContainer(c, events.ActionOOM, nil)
	}
	d.emitContainer(c, events.ActionDie, map[string]string{"exitCode": fmt.Sprint(st.ExitCode)})
	close(exited)
	d.log.Debug("container exit", "id", c.snapshot().ID, "exit-report", t0.Sub(st.Finished), "unmount", tUnmount.Sub(t0),
		"save", tSave.Sub(tUnmount))
	switch {
	case auto:
		t := time.Now()
		if err := d.RemoveContainer(ctx, c, true); err != nil {
			d.log.Warn("auto-remove container", "id", c.snapshot().ID, "err", err)
		}
		d.log.Debug("container auto-remove", "id", c.snapshot().ID, "remove", time.Since(t))
	case restart:
		d.containers.wg.Add(1)
		go d.restartLater(c, ran)
	}
}

// shouldRestart applies the restart policy to an exit.
func shouldRestart(rec containerRecord) bool {
	if rec.ManuallyStopped {
		return false
	}
	p := rec.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return rec.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || rec.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// restartLater starts a container again after Docker's back-off: 100 ms,
// doubling with each quick exit, back to 100 ms after a run of 10 s.
func (d *Daemon) restartLater(c *ctr, ran time.Duration) {
	defer d.containers.wg.Done()
	rec := c.snapshot()
	delay := 100 * time.Millisecond
	if ran < 10*time.Second {
		for i := 0; i < rec.RestartCount && delay < time.Minute; i++ {
			delay *= 2
		}
	}
	time.Sleep(min(delay, time.Minute))
	ctx := context.Background()
	if err := c.lock(ctx); err != nil {
		return
	}
	defer c.unlock()
	c.mu.Lock()
	ok := c.rec.State.Status == container.StateRestarting && !c.rec.ManuallyStopped && !c.removing
	if ok {
		c.rec.RestartCount++
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	if err := d.startContainer(ctx, c); err != nil {
		d.log.Warn("restart container", "id", rec.ID, "err", err)
	}
}

// autostartContainers starts, at daemon start-up, the containers whose
// policy says so: "always", and "unless-stopped" unless a user stopped them.
func (d *Daemon) autostartContainers() {
	for _, c := range d.containers.all() {
		rec := c.snapshot()
		p := rec.HostConfig.RestartPolicy.Name
		if p != container.RestartPolicyAlways && (p != container.RestartPolicyUnlessStopped || rec.ManuallyStopped) {
			continue
		}
		if rec.State.Status != container.StateExited {
			continue
		}
		ctx := context.Background()
		if err := c.lock(ctx); err != nil {
			continue
		}
		if err := d.startContainer(ctx, c); err != nil {
			d.log.Warn("start container at boot", "id", rec.ID, "err", err)
		}
		c.unlock()
	}
}
