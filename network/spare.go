package network

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fusebox/fusebox/internal/sched"
)

// A container start on the default network should not wait for CNI: the
// bridge plugin and its IPAM are two plugin execs, a few tens of
// milliseconds each, and their DEL as much again at the exit. So the
// manager keeps one sandbox on the default network made ahead of need (the
// spare), which the next Setup that asks for nothing but the default
// network takes by renaming its record, and Retire tears a default-network
// sandbox down after the container's exit has been reported instead of
// before. A spare is known to CNI and to the netns directory by a key of
// its own ("spare-…"), which it keeps for life (Sandbox.Key); its record
// is saved under that key until taken, so a daemon that dies with a spare
// finds it at start-up and Cleanup removes it as it removes any sandbox
// of a container that is not running.

const spareKeyPrefix = "spare-"

// spareFits tells whether a spare can serve req: the default network with
// no published port, fixed address, MAC or alias (a spare's interface was
// made without them).
func spareFits(req Request) bool {
	switch {
	case req.Mode.Kind != KindBridge && req.Mode.Kind != "":
		return false
	case req.Mode.Network != "" && req.Mode.Network != DefaultNetwork:
		return false
	}
	return len(req.Ports) == 0 && req.IP == "" && req.MAC == "" && len(req.Aliases) == 0
}

// takeSpare gives the spare to req.ID, waiting for one being made. ok is
// false when there is none to take: the caller makes its own.
func (m *Manager) takeSpare(req Request) (sb *Sandbox, ok bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.spareWanted = true
	for len(m.spares) == 0 && m.filling != nil {
		// It is further along than a sandbox started now would be, and
		// CNI calls run one at a time anyway.
		ch := m.filling
		m.mu.Unlock()
		<-ch
		m.mu.Lock()
	}
	if len(m.spares) == 0 {
		return nil, false, nil
	}
	sp := m.spares[0]
	if _, ok := m.sandboxes[req.ID]; ok {
		return nil, true, fmt.Errorf("network setup %s: %w", req.ID, ErrSandboxExists)
	}
	next := sp.clone()
	next.Key, next.ID = sp.ID, req.ID
	next.Name, next.Hostname = req.Name, req.Hostname
	for i := range next.Attachments {
		next.Attachments[i].EndpointID = newID()
	}
	next.Created = time.Now().UTC()
	if err := m.saveSandbox(next); err != nil {
		return nil, true, err
	}
	m.spares = m.spares[1:]
	// Should the daemon die before this, both records name one netns:
	// Cleanup tears it down twice, which CNI DEL and removeNetns allow.
	if err := m.removeRecord(sp.ID); err != nil {
		return nil, true, fmt.Errorf("network setup %s: %w", req.ID, err)
	}
	return next.clone(), true, nil
}

// Refill starts making a spare in the background unless there is one, one
// is being made, spares are off, or the manager is closing. The daemon
// calls it once a container's start is over: made beside the start, the
// spare's plugins slowed it down by a fifth.
func (m *Manager) Refill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Until a container asked for the default network, nobody needs its
	// bridge, let alone a spare on it.
	if !m.useSpare || !m.spareWanted || len(m.spares) > 0 || m.filling != nil || m.closed {
		return
	}
	done := make(chan struct{})
	m.filling = done
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		sched.Background()
		sb, err := m.makeSpare(context.Background())
		m.mu.Lock()
		surplus := err == nil && len(m.spares) >= maxSpares // retired ones refilled the pool
		if err == nil && !surplus {
			m.spares = append(m.spares, sb)
		}
		// A failed spare is not an error anyone waits for: the next Setup
		// makes its own sandbox and meets the same failure, with its reason.
		m.filling = nil
		close(done)
		m.mu.Unlock()
		if surplus && m.teardown(context.Background(), sb) == nil {
			_ = m.removeRecord(sb.ID)
		}
	}()
}

// makeSpare makes a sandbox on the default network under a spare key. It
// runs without the manager's lock: nothing else knows of the sandbox yet.
func (m *Manager) makeSpare(ctx context.Context) (*Sandbox, error) {
	n, err := m.lookupNetwork(ctx, DefaultNetwork)
	if err != nil {
		return nil, err
	}
	key := spareKeyPrefix + newID()[:24]
	sb := &Sandbox{ID: key, Mode: Mode{Kind: KindBridge, Network: n.Name}, Created: time.Now().UTC(),
		NetnsPath: filepath.Join(m.netnsDir, key), OwnNetns: true}
	if err := m.makeNetns(sb); err != nil {
		return nil, err
	}
	att, err := m.attach(ctx, sb, n, "eth0", EndpointOptions{}, nil)
	if err != nil {
		_ = m.teardown(ctx, sb)
		return nil, err
	}
	sb.Attachments = append(sb.Attachments, att)
	if err := m.writeRecord(sb); err != nil {
		_ = m.teardown(ctx, sb)
		return nil, fmt.Errorf("save spare sandbox: %w", err)
	}
	return sb, nil
}

// Retire is Teardown for a container whose processes are gone, done off
// the caller's path where that is safe: a sandbox only on the default
// network with no published port leaves the container at once and is torn
// down in the background (a Setup or Teardown of the same container waits
// for that; Close waits for all). Anything else — published ports, whose
// host ports must be free when the exit is reported, or user networks,
// which can be removed right after — is torn down before Retire returns.
// With recycle, a sandbox that was a spare becomes one again (see
// recycle) and nothing is torn down. The channel receives the teardown's
// result, then is closed.
func (m *Manager) Retire(ctx context.Context, id string, recycle bool) <-chan error {
	res := make(chan error, 1)
	m.mu.Lock()
	sb, ok := m.sandboxes[id]
	if ok && recycle && m.recycle(sb) {
		m.mu.Unlock()
		res <- nil
		close(res)
		return res
	}
	if !ok || m.closed || !retireLater(sb) {
		m.mu.Unlock()
		res <- m.Teardown(ctx, id)
		close(res)
		return res
	}
	delete(m.sandboxes, id)
	done := make(chan struct{})
	m.retiring[id] = done
	m.bg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.bg.Done()
		sched.Background()
		err := m.teardown(ctx, sb)
		m.mu.Lock()
		if err != nil {
			// Kept, as Teardown keeps it, for a retry by the next Teardown
			// or by Cleanup at start-up.
			m.sandboxes[id] = sb
		} else if rerr := m.removeRecord(id); rerr != nil {
			err = fmt.Errorf("teardown %s: %w", id, rerr)
		}
		delete(m.retiring, id)
		close(done)
		m.mu.Unlock()
		res <- err
		close(res)
	}()
	return res
}

// maxSpares bounds the spares kept: one made ahead of need, one more
// recycled, so that back-to-back starts always find one.
const maxSpares = 2

// recycle makes a retired sandbox a spare again instead of tearing it down,
// when that is safe and wanted: it was itself a spare (so its key is no
// container's id), it has the default network's eth0 alone and no ports, no
// other container shares its namespace, and the pool has room. The caller
// holds m.mu and vouches, by asking, that the container could not change
// the namespace (no privileges, no added capabilities): all its processes
// are gone, and what stays of it — an address and a MAC on the bridge —
// is what the next container would get anyway.
func (m *Manager) recycle(sb *Sandbox) bool {
	switch {
	case !m.useSpare || m.closed || len(m.spares) >= maxSpares:
		return false
	case !strings.HasPrefix(sb.Key, spareKeyPrefix) || !sb.OwnNetns || len(sb.Ports) > 0:
		return false
	case len(sb.Attachments) != 1 || sb.Attachments[0].Network != DefaultNetwork || !netnsExists(sb.NetnsPath):
		return false
	}
	for _, o := range m.sandboxes {
		if o != sb && o.NetnsPath == sb.NetnsPath {
			return false
		}
	}
	sp := sb.clone()
	sp.ID, sp.Key, sp.Name, sp.Hostname = sb.Key, "", "", ""
	sp.Mode = Mode{Kind: KindBridge, Network: DefaultNetwork}
	sp.Created = time.Now().UTC()
	if err := m.writeRecord(sp); err != nil {
		return false
	}
	delete(m.sandboxes, sb.ID)
	// Should the daemon die before this, both records name one netns:
	// Cleanup tears it down twice, which CNI DEL and removeNetns allow.
	_ = m.removeRecord(sb.ID)
	m.spares = append(m.spares, sp)
	return true
}

// retireLater tells whether sb may be torn down after its container's exit
// is reported (see Retire).
func retireLater(sb *Sandbox) bool {
	if len(sb.Ports) > 0 {
		return false
	}
	for _, a := range sb.Attachments {
		if a.Network != DefaultNetwork {
			return false
		}
	}
	return true
}

// awaitRetired waits until no background teardown of id's sandbox is
// left: its netns file, CNI cache entries and record share the id.
func (m *Manager) awaitRetired(id string) {
	m.mu.Lock()
	ch := m.retiring[id]
	m.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// Close finishes the manager's background work (a spare being made,
// sandboxes being retired) and tears the spares down. Setup still works
// after it, without spares; the daemon calls it when it shuts down.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.bg.Wait()
	m.mu.Lock()
	spares := m.spares
	m.spares = nil
	m.mu.Unlock()
	var errs []error
	for _, sp := range spares {
		if err := m.teardown(ctx, sp); err != nil {
			errs = append(errs, fmt.Errorf("close: spare sandbox: %w", err))
			continue
		}
		if err := m.removeRecord(sp.ID); err != nil {
			errs = append(errs, fmt.Errorf("close: %w", err))
		}
	}
	return errors.Join(errs...)
}
