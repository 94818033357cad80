package launcher

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
)

// ExecConfig is an extra process to run in a running container, as
// `docker exec` options mean it.
type ExecConfig struct {
	// ID names the exec for Exec.Resize; the daemon's exec id.
	ID   string   `json:"id"`
	Args []string `json:"args"`
	// Env is added to the container's environment (KEY=value, later wins).
	Env []string `json:"env,omitempty"`
	// Cwd defaults to the container's working directory.
	Cwd string `json:"cwd,omitempty"`
	// User is a `-u` value resolved in the container's rootfs; empty
	// means the container's user.
	User       string `json:"user,omitempty"`
	Tty        bool   `json:"tty,omitempty"`
	Stdin      bool   `json:"stdin,omitempty"` // keep stdin open (-i)
	Privileged bool   `json:"privileged,omitempty"`
	// ConsoleWidth and ConsoleHeight are the initial tty size.
	ConsoleWidth  uint16 `json:"consoleWidth,omitempty"`
	ConsoleHeight uint16 `json:"consoleHeight,omitempty"`
}

// execProcess builds the libcontainer process for an exec from the
// container's own process settings.
func (s *shim) execProcess(ec *ExecConfig) (*libcontainer.Process, error) {
	if len(ec.Args) == 0 || ec.Args[0] == "" {
		return nil, fmt.Errorf("%w: no command specified", ErrInvalidOptions)
	}
	base := s.cfg.Spec.Process
	p, err := newProcess(base)
	if err != nil {
		return nil, err
	}
	p.Args = ec.Args
	p.Env = mergeEnv(base.Env, ec.Env)
	if ec.Cwd != "" {
		p.Cwd = ec.Cwd
	}
	if ec.User != "" {
		u, err := ResolveUser(s.cfg.Spec.Root.Path, ec.User)
		if err != nil {
			return nil, err
		}
		p.UID, p.GID = int(u.UID), int(u.GID)
		p.AdditionalGroups = nil
		for _, g := range u.AdditionalGids {
			p.AdditionalGroups = append(p.AdditionalGroups, int(g))
		}
	}
	if ec.Privileged {
		all := allCapabilities()
		p.Capabilities = &configs.Capabilities{Bounding: all, Effective: all, Permitted: all}
	}
	p.ConsoleWidth, p.ConsoleHeight = ec.ConsoleWidth, ec.ConsoleHeight
	return p, nil
}

// mergeEnv overlays extra on base, key by key, keeping base's order.
func mergeEnv(base, extra []string) []string {
	out := append([]string(nil), base...)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// exec runs an extra process and streams it over conn: stdin in, frames
// out, and a last frame with its exit status.
func (s *shim) exec(conn net.Conn, br *bufio.Reader, req request) {
	fail := func(code int, err error) {
		_ = writeJSONLine(conn, response{Error: err.Error(), ExitCode: code})
	}
	ec := req.Exec
	if ec == nil {
		fail(125, fmt.Errorf("%w: no exec config", ErrInvalidOptions))
		return
	}
	p, err := s.execProcess(ec)
	if err != nil {
		fail(125, err)
		return
	}
	var (
		theirs      []io.Closer
		consoleSock *os.File
		stdin       io.WriteCloser
		outputs     []*os.File
	)
	if ec.Tty {
		parent, child, err := sockPair()
		if err != nil {
			fail(125, err)
			return
		}
		p.ConsoleSocket = child
		consoleSock = parent
		theirs = append(theirs, child)
	} else {
		if ec.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				fail(125, err)
				return
			}
			p.Stdin, stdin = r, w
			theirs = append(theirs, r)
		}
		for _, dst := range []*io.Writer{&p.Stdout, &p.Stderr} {
			r, w, err := os.Pipe()
			if err != nil {
				closeAll(theirs)
				fail(125, err)
				return
			}
			*dst = w
			theirs = append(theirs, w)
			outputs = append(outputs, r)
		}
	}
	handed, err := handFilter(p, s.cfg.Filter)
	if err != nil {
		closeAll(theirs)
		fail(125, err)
		return
	}
	theirs = append(theirs, handed...)
	err = s.container.Run(p)
	if err == nil {
		err = s.confirmFiltered(p, true)
	}
	closeAll(theirs)
	if err != nil {
		if consoleSock != nil {
			_ = consoleSock.Close()
		}
		if stdin != nil {
			_ = stdin.Close()
		}
		for _, f := range outputs {
			_ = f.Close()
		}
		se := startError(err)
		fail(se.Code, err)
		return
	}
	var master *os.File
	if consoleSock != nil {
		if master, err = recvConsole(consoleSock); err != nil {
			_ = p.Signal(os.Kill)
			_, _ = p.Wait()
			fail(125, fmt.Errorf("receive exec console: %w", err))
			return
		}
		if ec.ID != "" {
			s.mu.Lock()
			s.execs[ec.ID] = master
			s.mu.Unlock()
		}
		stdin = master
		outputs = []*os.File{master}
	}
	pid, _ := p.Pid()
	if err := writeJSONLine(conn, response{Pid: pid}); err != nil {
		// The daemon went away: the exec runs on, detached.
		conn = nil
	}

	attached := conn != nil
	var wmu sync.Mutex
	send := func(stream byte, b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		if conn != nil && writeFrame(conn, stream, b) != nil {
			conn = nil
		}
	}
	var copiers sync.WaitGroup
	for i, f := range outputs {
		stream := byte(frameStdout + i)
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			if master == nil {
				defer f.Close()
			}
			buf := make([]byte, 32*1024)
			for {
				n, err := f.Read(buf)
				if n > 0 {
					send(stream, buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
	if stdin != nil && attached {
		go func() {
			_, _ = io.Copy(stdin, br)
			if master == nil {
				_ = stdin.Close()
			}
		}()
	} else if stdin != nil && master == nil {
		_ = stdin.Close()
	}

	ps, werr := p.Wait()
	st := exitStatus(ps, werr)
	st.Finished = time.Now().UTC()
	drained := make(chan struct{})
	go func() { copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(3 * time.Second):
	}
	if master != nil {
		s.mu.Lock()
		delete(s.execs, ec.ID)
		s.mu.Unlock()
		_ = master.Close()
	}
	b, _ := json.Marshal(st)
	send(frameExit, b)
}
