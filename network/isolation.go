package network

import (
	"bytes"
	"fmt"
	"os/exec"
)

// adminChain is the firewall plugin's chain for administrators' rules: the
// plugin's CNI-FORWARD jumps to it before it accepts any container traffic,
// so a DROP here wins over the plugin's ACCEPTs.
const adminChain = "CNI-ADMIN"

const isolationComment = "fusebox network isolation"

// isolationRules keep networks apart as Docker does: a user network's bridge
// forwards only to itself among fusebox's bridges, the default bridge does
// not forward to user networks, and an internal network forwards nowhere.
// A container on two networks still talks on both: that traffic never
// crosses the host's FORWARD between two bridges.
func isolationRules(n Network, defaultBridge string) [][]string {
	x := n.Bridge
	rule := func(args ...string) []string {
		return append(args, "-m", "comment", "--comment", isolationComment)
	}
	switch {
	case n.Driver != "bridge" || x == "":
		return nil
	case n.Name == DefaultNetwork:
		return [][]string{rule("-i", x, "-o", userBridgePrefix+"+", "-j", "DROP")}
	case n.Internal:
		return [][]string{
			rule("-i", x, "-o", x, "-j", "RETURN"),
			rule("-i", x, "-j", "DROP"),
			rule("-o", x, "-j", "DROP"),
		}
	default:
		return [][]string{
			rule("-i", x, "-o", x, "-j", "RETURN"),
			rule("-i", x, "-o", userBridgePrefix+"+", "-j", "DROP"),
			rule("-i", x, "-o", defaultBridge, "-j", "DROP"),
		}
	}
}

// userBridgePrefix names user networks' bridges, fb-<12 hex digits of id>.
const userBridgePrefix = "fb-"

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %v: %v: %s", args, err, bytes.TrimSpace(out))
	}
	return nil
}

// ensureIsolation adds a network's isolation rules that are missing.
func ensureIsolation(n Network, defaultBridge string) error {
	rules := isolationRules(n, defaultBridge)
	if len(rules) == 0 {
		return nil
	}
	if iptables("-t", "filter", "-S", adminChain) != nil {
		if err := iptables("-t", "filter", "-N", adminChain); err != nil {
			return fmt.Errorf("isolate network %s: %w", n.Name, err)
		}
	}
	for _, r := range rules {
		if iptables(append([]string{"-t", "filter", "-C", adminChain}, r...)...) == nil {
			continue
		}
		if err := iptables(append([]string{"-t", "filter", "-A", adminChain}, r...)...); err != nil {
			return fmt.Errorf("isolate network %s: %w", n.Name, err)
		}
	}
	return nil
}

// removeIsolation deletes a network's isolation rules; missing ones are
// not an error.
func removeIsolation(n Network, defaultBridge string) error {
	for _, r := range isolationRules(n, defaultBridge) {
		for iptables(append([]string{"-t", "filter", "-C", adminChain}, r...)...) == nil {
			if err := iptables(append([]string{"-t", "filter", "-D", adminChain}, r...)...); err != nil {
				return fmt.Errorf("remove isolation of network %s: %w", n.Name, err)
			}
		}
	}
	return nil
}
