package network

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// masqPerContainer reports whether a cached config list has the bridge
// plugin masquerade per container (ipMasq), as fusebox versions before the
// network-wide rule (networkRules) configured it. Only such attachments can
// have left rules for removeMasqRules.
func masqPerContainer(list *libcni.NetworkConfigList) bool {
	for _, p := range list.Plugins {
		var c struct {
			IPMasq bool `json:"ipMasq"`
		}
		if p.Network.Type == "bridge" && json.Unmarshal(p.Bytes, &c) == nil && c.IPMasq {
			return true
		}
	}
	return false
}

// removeMasqRules deletes the bridge plugin's masquerade rules of one
// container on one network, made by older versions (see masqPerContainer). The bridge plugin's DEL finds those rules by the
// addresses on the container's interface, so when the namespace is already
// gone (a crash that lost /run, a netns removed by hand) it skips them; they
// still carry the plugin's comment `name: "<net>" id: "<id>"`, which is what
// this matches: the POSTROUTING rules and the per-container chain they jump
// to.
func removeMasqRules(network, id string) error {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-L", "POSTROUTING", "--line-numbers", "-n").Output()
	if err != nil {
		return fmt.Errorf("list nat POSTROUTING: %w", err)
	}
	comment := fmt.Sprintf(`/* name: "%s" id: "%s" */`, network, id)
	var nums []int
	chains := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, comment) {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		nums = append(nums, n)
		if strings.HasPrefix(f[1], "CNI-") {
			chains[f[1]] = true
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(nums)))
	for _, n := range nums {
		if out, err := exec.Command("iptables", "-w", "-t", "nat", "-D", "POSTROUTING", strconv.Itoa(n)).CombinedOutput(); err != nil {
			return fmt.Errorf("delete masquerade rule of %s: %v: %s", id, err, bytes.TrimSpace(out))
		}
	}
	for c := range chains {
		exec.Command("iptables", "-w", "-t", "nat", "-F", c).Run()
		if out, err := exec.Command("iptables", "-w", "-t", "nat", "-X", c).CombinedOutput(); err != nil {
			return fmt.Errorf("delete masquerade chain %s of %s: %v: %s", c, id, err, bytes.TrimSpace(out))
		}
	}
	return nil
}
