package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	apinet "github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"

	"github.com/fusebox/fusebox/api"
)

// containerOpts are the flags `run` and `create` share, as Docker names
// them.
type containerOpts struct {
	interactive, tty, privileged, readOnly, init bool
	name, workdir, user, hostname, entrypoint    string
	cpusetCpus, cidfile, restart, stopSignal     string
	net                                          netOpts
	netCfg                                       *apinet.NetworkingConfig
	env, envFile, labels, attach                 []string
	securityOpts                                 []string
	memory                                       memBytes
	cpuShares, pidsLimit                         int64
	stopTimeout                                  int
	entrypointSet, stopTimeoutSet                bool
	// mounts are -v, --mount, --tmpfs and --volumes-from (container_volumes.go).
	mounts mountOpts
}

// memBytes is a byte count flag that takes Docker's units (512m, 1g).
type memBytes int64

func (m *memBytes) String() string {
	if *m == 0 {
		return "0"
	}
	return strconv.FormatInt(int64(*m), 10)
}

func (m *memBytes) Set(s string) error {
	n, err := units.RAMInBytes(s)
	if err != nil {
		return err
	}
	*m = memBytes(n)
	return nil
}

func (m *memBytes) Type() string { return "bytes" }

func (o *containerOpts) addFlags(fl *pflag.FlagSet) {
	fl.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.StringVar(&o.name, "name", "", "Assign a name to the container")
	listVarP(fl, &o.env, "env", "e", "Set environment variables")
	listVarP(fl, &o.envFile, "env-file", "", "Read in a file of environment variables")
	fl.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fl.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	// -h is the hostname, as in Docker, so help is --help only.
	fl.Bool("help", false, "Print usage")
	fl.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fl.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fl.VarP(&o.memory, "memory", "m", "Memory limit")
	fl.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&o.cpusetCpus, "cpuset", "", "CPUs in which to allow execution (alias of --cpuset-cpus)")
	_ = fl.MarkHidden("cpuset")
	fl.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	listVarP(fl, &o.securityOpts, "security-opt", "", "Security Options")
	fl.StringVar(&o.cidfile, "cidfile", "", "Write the container ID to the file")
	fl.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fl.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
	fl.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fl.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fl.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	listVarP(fl, &o.labels, "label", "l", "Set meta data on a container")
	listVarP(fl, &o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	o.net.addFlags(fl)
	o.mounts.addFlags(fl)
}

// config turns the flags and the positional IMAGE [COMMAND...] into the
// create request's halves.
func (o *containerOpts) config(fl *pflag.FlagSet, args []string) (*container.Config, *container.HostConfig, error) {
	o.entrypointSet = fl.Changed("entrypoint")
	o.stopTimeoutSet = fl.Changed("stop-timeout")
	env, err := readEnv(o.envFile, o.env)
	if err != nil {
		return nil, nil, err
	}
	labels := map[string]string{}
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, nil, fmt.Errorf("invalid label %q: empty name", l)
		}
		labels[k] = v
	}
	policy, err := parseRestart(o.restart)
	if err != nil {
		return nil, nil, err
	}
	cfg := &container.Config{
		Image:      args[0],
		Cmd:        args[1:],
		Env:        env,
		WorkingDir: o.workdir,
		User:       o.user,
		Hostname:   o.hostname,
		Tty:        o.tty,
		OpenStdin:  o.interactive,
		Labels:     labels,
		StopSignal: o.stopSignal,
	}
	if len(cfg.Cmd) == 0 {
		cfg.Cmd = nil
	}
	if o.entrypointSet {
		cfg.Entrypoint = []string{o.entrypoint}
	}
	if o.stopTimeoutSet {
		t := o.stopTimeout
		cfg.StopTimeout = &t
	}
	hc := &container.HostConfig{
		RestartPolicy:  policy,
		Privileged:     o.privileged,
		ReadonlyRootfs: o.readOnly,
		Resources: container.Resources{
			Memory:     int64(o.memory),
			CPUShares:  o.cpuShares,
			CpusetCpus: o.cpusetCpus,
		},
	}
	if o.pidsLimit != 0 {
		p := o.pidsLimit
		hc.PidsLimit = &p
	}
	if o.init {
		t := true
		hc.Init = &t
	}
	if hc.SecurityOpt, err = readSecurityOpts(o.securityOpts); err != nil {
		return nil, nil, err
	}
	if err = o.mounts.apply(cfg, hc); err != nil {
		return nil, nil, err
	}
	if o.netCfg, err = o.net.apply(cfg, hc); err != nil {
		return nil, nil, err
	}
	return cfg, hc, nil
}

// readSecurityOpts checks --security-opt values as the docker CLI does
// and replaces the file of seccomp=FILE with the profile it holds, which
// is what the daemon takes: the daemon may not see the caller's files.
func readSecurityOpts(opts []string) ([]string, error) {
	var out []string
	for _, opt := range opts {
		key, val, ok := api.CutSecurityOpt(opt)
		if !ok && opt != "no-new-privileges" {
			return nil, fmt.Errorf("invalid --security-opt: %q", opt)
		}
		if key == "seccomp" && val != "unconfined" && val != "builtin" {
			b, err := os.ReadFile(val)
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", val, err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, b); err != nil {
				return nil, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", val, err)
			}
			opt = "seccomp=" + compact.String()
		}
		out = append(out, opt)
	}
	return out, nil
}

// parseRestart reads --restart: no, always, unless-stopped, on-failure[:N].
func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, fmt.Errorf("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	if err := container.ValidateRestartPolicy(p); err != nil {
		return p, err
	}
	return p, nil
}

// readEnv reads --env-file files then -e values: KEY=value as is, a bare
// KEY takes the value from this process's environment (and is dropped when
// unset), as Docker does.
func readEnv(files, vals []string) ([]string, error) {
	var out []string
	add := func(kv string) error {
		k, _, hasValue := strings.Cut(kv, "=")
		if k == "" {
			return fmt.Errorf("invalid environment variable: %s", kv)
		}
		if hasValue {
			out = append(out, kv)
		} else if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
		return nil
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("open env file: %w", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimLeft(sc.Text(), " \t")
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := add(line); err != nil {
				fh.Close()
				return nil, err
			}
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("read env file: %w", err)
		}
	}
	for _, v := range vals {
		if err := add(v); err != nil {
			return nil, err
		}
	}
	return out, nil
}
