package network

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestConcurrentSetups starts setups at once: random ports never collide
// and of several claims on one fixed port exactly one wins.
func TestConcurrentSetups(t *testing.T) {
	if testing.Short() {
		t.Skip("8 concurrent setups: slow")
	}
	needRoot(t)
	ctx := context.Background()
	m, _ := newTestManager(t)
	fixed := freePort(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]*Sandbox, n)
	errs := make([]error, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ports := []PortBinding{{ContainerPort: 80, Proto: "tcp"}}
			if i%2 == 0 {
				ports = append(ports, PortBinding{HostPort: fixed, ContainerPort: 81, Proto: "tcp"})
			}
			results[i], errs[i] = m.Setup(ctx, Request{ID: "conc" + strconv.Itoa(i), Mode: bridgeMode, Ports: ports})
		}()
	}
	wg.Wait()
	t.Logf("%d setups in %v", n, time.Since(start))
	seen := map[uint16]string{}
	fixedWinners := 0
	for i := range n {
		if errs[i] != nil {
			if i%2 == 0 && errors.Is(errs[i], ErrPortAllocated) {
				continue
			}
			t.Fatalf("setup %d: %v", i, errs[i])
		}
		for _, p := range results[i].Ports {
			if p.HostPort == fixed {
				fixedWinners++
			}
			if other, ok := seen[p.HostPort]; ok {
				t.Fatalf("host port %d given to %s and %s", p.HostPort, other, results[i].ID)
			}
			seen[p.HostPort] = results[i].ID
		}
	}
	if fixedWinners != 1 {
		t.Fatalf("%d sandboxes hold the fixed port %d, want 1", fixedWinners, fixed)
	}
	start = time.Now()
	for i := range n {
		if err := m.Teardown(ctx, "conc"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d teardowns in %v", n, time.Since(start))
}
