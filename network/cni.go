package network

import (
	"context"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

// cniCalls runs the manager's CNI calls one at a time, as nerdctl does:
// plugins of one network share its bridge, its IPAM store and the
// iptables chains they add to. It is a lock of its own, not the manager's,
// so that a spare being made or a sandbox being retired in the background
// (spare.go) never holds up a Setup that needs no CNI call.
type cniCalls struct {
	mu sync.Mutex
	c  *libcni.CNIConfig
}

func (c *cniCalls) AddNetworkList(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (types.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.AddNetworkList(ctx, list, rt)
}

func (c *cniCalls) DelNetworkList(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.DelNetworkList(ctx, list, rt)
}

func (c *cniCalls) GetCachedAttachments(id string) ([]*libcni.NetworkAttachment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.GetCachedAttachments(id)
}
