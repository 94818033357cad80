package launcher

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// The daemon and the shim talk over the unix socket SocketFile in the state
// directory, one connection per call. The daemon writes one JSON request
// line; the shim answers with one JSON response line. Calls that carry
// streams (attach, exec) go on after the response: the daemon's side sends
// raw stdin bytes and half-closes for EOF; the shim's side sends frames, an
// 8-byte header (stream byte, three zero bytes, big-endian uint32 length,
// the layout of Docker's multiplexed stream) then the payload.

// Files in the state directory.
const (
	SocketFile = "shim.sock"   // the shim's control socket
	ExitFile   = "exit.json"   // the recorded ExitStatus
	ConfigFile = "config.json" // what Start asked the shim to run
	PidFile    = "shim.pid"    // the shim's pid while it runs
	ShimLog    = "shim.log"    // the shim's own stderr
	LogFile    = "json.log"    // the container's output (json-file format), by default
	runcDir    = "runc"        // libcontainer's state root
)

const (
	opAttach  = "attach"
	opBegin   = "begin"
	opResize  = "resize"
	opSignal  = "signal"
	opPause   = "pause"
	opResume  = "resume"
	opWait    = "wait"
	opState   = "state"
	opTop     = "processes"
	opStats   = "stats"
	opExec    = "exec"
	opKillAll = "killall"
)

type request struct {
	Op string `json:"op"`
	// attach
	Stdin      bool `json:"stdin,omitempty"`
	Stdout     bool `json:"stdout,omitempty"`
	Stderr     bool `json:"stderr,omitempty"`
	CloseStdin bool `json:"closeStdin,omitempty"`
	// resize (ExecID empty: the container's tty)
	ExecID string `json:"execID,omitempty"`
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	// signal
	Signal int `json:"signal,omitempty"`
	// exec
	Exec *ExecConfig `json:"exec,omitempty"`
}

type response struct {
	Error    string      `json:"error,omitempty"`
	ExitCode int         `json:"exitCode,omitempty"` // with Error: Docker's code for a failed start
	Pid      int         `json:"pid,omitempty"`
	State    *State      `json:"state,omitempty"`
	Exit     *ExitStatus `json:"exit,omitempty"`
	Pids     []int       `json:"pids,omitempty"`
	Stats    *Stats      `json:"stats,omitempty"`
	Ready    bool        `json:"ready,omitempty"`
}

// Frame stream ids, shim to daemon.
const (
	frameStdout = 1
	frameStderr = 2
	frameExit   = 5 // payload: an ExitStatus in JSON, the last frame of an exec
)

func writeFrame(w io.Writer, stream byte, p []byte) error {
	var h [8]byte
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[4:])
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("read frame: %w", err)
	}
	return h[0], buf, nil
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readJSONLine reads one line from br into v. br must be the only reader of
// the connection afterwards, since it may have buffered stream bytes.
func readJSONLine(br *bufio.Reader, v any) error {
	line, err := br.ReadBytes('\n')
	if err != nil {
		return err
	}
	return json.Unmarshal(line, v)
}

// ExitStatus is how a container's command, or an exec, ended.
type ExitStatus struct {
	// ExitCode is Docker's: the command's status, 128+N when signal N
	// killed it, 126 when it could not be invoked, 127 when not found.
	ExitCode int       `json:"exitCode"`
	Signal   int       `json:"signal,omitempty"` // the signal that killed it, if one did
	Finished time.Time `json:"finishedAt"`
	// Error says why the command never ran, if it didn't.
	Error string `json:"error,omitempty"`
	// OOMKilled is set when the memory cgroup killed a process.
	OOMKilled bool `json:"oomKilled,omitempty"`
}

// State is a running shim's view of its container.
type State struct {
	ID      string    `json:"id"`
	Pid     int       `json:"pid"`     // the command's pid on the host
	ShimPid int       `json:"shimPid"` // the shim's pid
	Status  string    `json:"status"`  // "created", "running", "paused", "stopped"
	Started time.Time `json:"startedAt,omitzero"`
}

// Stats are a container's resource usage, read from its cgroups.
type Stats struct {
	Read          time.Time         `json:"read"`
	CPUTotal      uint64            `json:"cpuTotal"`  // ns of CPU time, all CPUs
	CPUKernel     uint64            `json:"cpuKernel"` // ns in kernel mode
	CPUUser       uint64            `json:"cpuUser"`   // ns in user mode
	PerCPU        []uint64          `json:"perCPU,omitempty"`
	MemoryUsage   uint64            `json:"memoryUsage"`
	MemoryMax     uint64            `json:"memoryMaxUsage"`
	MemoryLimit   uint64            `json:"memoryLimit"`
	MemoryDetails map[string]uint64 `json:"memoryStats,omitempty"` // memory.stat: cache, rss, ...
	PidsCurrent   uint64            `json:"pidsCurrent"`
	PidsLimit     uint64            `json:"pidsLimit"` // 0: unlimited
	// Blkio is the bytes the container's cgroup read and wrote per device
	// (blkio io_service_bytes_recursive), for stats' BLOCK I/O.
	Blkio []BlkioEntry `json:"blkio,omitempty"`
}

// BlkioEntry is one blkio counter: the bytes of one operation ("Read",
// "Write", "Sync", "Async", "Discard", "Total") on device Major:Minor.
type BlkioEntry struct {
	Major uint64 `json:"major"`
	Minor uint64 `json:"minor"`
	Op    string `json:"op"`
	Value uint64 `json:"value"`
}
