package network

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// forwardChain is fusebox's own chain in the filter table, jumped to from
// the top of FORWARD. It holds the isolation rules of every network first
// (inserted at its top) and then each bridge's ACCEPT rules (appended), so a
// DROP between networks wins over an ACCEPT, and containers forward even on
// hosts whose FORWARD policy is DROP. Nothing in it is per container: a
// container's start and stop touch no iptables rule at all (see doc.go).
const forwardChain = "FUSEBOX-FORWARD"

// Comments on fusebox's rules, so that `iptables -S` tells whose they are.
const (
	isolationComment = "fusebox network isolation"
	forwardComment   = "fusebox network forwarding"
	jumpComment      = "fusebox"
)

// legacyAdminChain is the firewall plugin's chain for administrators'
// rules, where fusebox versions that ran the firewall plugin put their
// isolation rules; New removes them from there.
const legacyAdminChain = "CNI-ADMIN"

// userBridgePrefix names user networks' bridges, fb-<12 hex digits of id>.
const userBridgePrefix = "fb-"

// A rule is one iptables rule of a network: its table, chain and match and
// target arguments. top rules are inserted at the head of the chain, the
// others appended.
type rule struct {
	table, chain string
	args         []string
	top          bool
}

// networkRules are the host rules one bridge network owns, made when it is
// created (and again at start-up, after a reboot) and removed with it:
//
//   - isolation, as in Docker: a user network's bridge forwards only to
//     itself among fusebox's bridges, the default bridge does not forward to
//     user networks, and an internal network forwards nowhere. A container
//     on two networks still talks on both: that traffic never crosses the
//     host's FORWARD between two bridges.
//   - forwarding (not internal): everything out of the bridge, and into it
//     what answers the containers' own connections (RELATED,ESTABLISHED) or
//     was DNATed to a published port.
//   - masquerade (not internal): Docker's `-s SUBNET ! -o BRIDGE -j
//     MASQUERADE`, one rule for the whole subnet instead of the bridge
//     plugin's chain per container.
func networkRules(n Network, defaultBridge string) []rule {
	x := n.Bridge
	if n.Driver != "bridge" || x == "" || !n.Subnet.IsValid() {
		return nil
	}
	iso := func(args ...string) rule {
		return rule{"filter", forwardChain, commented(isolationComment, args...), true}
	}
	var rules []rule
	switch {
	case n.Name == DefaultNetwork:
		rules = append(rules, iso("-i", x, "-o", userBridgePrefix+"+", "-j", "DROP"))
	case n.Internal:
		rules = append(rules,
			iso("-i", x, "-o", x, "-j", "ACCEPT"),
			iso("-i", x, "-j", "DROP"),
			iso("-o", x, "-j", "DROP"))
	default:
		rules = append(rules,
			iso("-i", x, "-o", x, "-j", "ACCEPT"),
			iso("-i", x, "-o", userBridgePrefix+"+", "-j", "DROP"),
			iso("-i", x, "-o", defaultBridge, "-j", "DROP"))
	}
	if n.Internal {
		return rules
	}
	fwd := func(args ...string) rule {
		return rule{"filter", forwardChain, commented(forwardComment, args...), false}
	}
	return append(rules,
		fwd("-i", x, "-j", "ACCEPT"),
		fwd("-o", x, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "ACCEPT"),
		rule{"nat", "POSTROUTING", commented(masqComment(n.Name), "-s", n.Subnet.Masked().String(), "!", "-o", x, "-j", "MASQUERADE"), false})
}

// commented puts a comment match before the rule's final "-j TARGET", where
// `iptables -S` prints it, so that a listed rule reads as it was given.
func commented(comment string, args ...string) []string {
	n := len(args) - 2
	out := append([]string(nil), args[:n]...)
	out = append(out, "-m", "comment", "--comment", comment)
	return append(out, args[n:]...)
}

func masqComment(network string) string { return "fusebox network " + network + " masquerade" }

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %v: %v: %s", args, err, bytes.TrimSpace(out))
	}
	return nil
}

// has reports whether the rule is in its chain.
func (r rule) has() bool {
	return iptables(append([]string{"-t", r.table, "-C", r.chain}, r.args...)...) == nil
}

// listChain returns the rules of one chain as `iptables -S` prints them,
// each as its arguments after "-A <chain>", joined by NUL bytes (see key),
// and whether the chain exists.
func listChain(table, chain string) (map[string]bool, bool) {
	out, err := exec.Command("iptables", "-w", "-t", table, "-S", chain).Output()
	if err != nil {
		return nil, false
	}
	rules := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		if args, err := splitRule(line); err == nil && len(args) > 2 {
			rules[strings.Join(args[2:], "\x00")] = true
		}
	}
	return rules, true
}

func (r rule) key() string { return strings.Join(r.args, "\x00") }

// ensureForwardChain makes fusebox's filter chain, if missing, and the jump
// to it at the top of FORWARD, and returns the chain's rules. Other daemons
// (other roots, tests) may race to make the chain: one that exists after a
// failed -N is fine.
func ensureForwardChain() (map[string]bool, error) {
	listed, ok := listChain("filter", forwardChain)
	if !ok {
		if err := iptables("-t", "filter", "-N", forwardChain); err != nil {
			if listed, ok = listChain("filter", forwardChain); !ok {
				return nil, err
			}
		}
	}
	jump := rule{"filter", "FORWARD", []string{"-m", "comment", "--comment", jumpComment, "-j", forwardChain}, true}
	if !jump.has() {
		if err := iptables(append([]string{"-t", "filter", "-I", "FORWARD", "1"}, jump.args...)...); err != nil {
			return nil, err
		}
	}
	return listed, nil
}

// ensureNetworkRules adds the rules of the networks that are missing. It
// lists the two chains it adds to once, so that a daemon's start-up costs a
// few execs however many networks it has; a rule not found in the listing
// (iptables may print one differently from how it was given) is checked
// with -C before it is added, so it is never added twice.
func ensureNetworkRules(nets []Network, defaultBridge string) error {
	var rules []rule
	for _, n := range nets {
		rules = append(rules, networkRules(n, defaultBridge)...)
	}
	if len(rules) == 0 {
		return nil
	}
	filter, err := ensureForwardChain()
	if err != nil {
		return fmt.Errorf("network rules: %w", err)
	}
	nat, _ := listChain("nat", "POSTROUTING")
	present := func(r rule) bool {
		if (r.table == "filter" && filter[r.key()]) || (r.table == "nat" && nat[r.key()]) {
			return true
		}
		return r.has()
	}
	// Inserting at the top reverses order, so the top rules go in last
	// first: a network's ACCEPT of its own traffic stays above its DROPs.
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		if !r.top || present(r) {
			continue
		}
		if err := iptables(append([]string{"-t", r.table, "-I", r.chain, "1"}, r.args...)...); err != nil {
			return fmt.Errorf("network rules: %w", err)
		}
	}
	for _, r := range rules {
		if r.top || present(r) {
			continue
		}
		if err := iptables(append([]string{"-t", r.table, "-A", r.chain}, r.args...)...); err != nil {
			return fmt.Errorf("network rules: %w", err)
		}
	}
	return nil
}

// removeNetworkRules deletes a network's rules; missing ones are not an
// error.
func removeNetworkRules(n Network, defaultBridge string) error {
	for _, r := range networkRules(n, defaultBridge) {
		for r.has() {
			if err := iptables(append([]string{"-t", r.table, "-D", r.chain}, r.args...)...); err != nil {
				return fmt.Errorf("remove rules of network %s: %w", n.Name, err)
			}
		}
	}
	return nil
}

// removeLegacyIsolation deletes the isolation rules that fusebox versions
// using the firewall plugin put in its CNI-ADMIN chain (they now live in
// FUSEBOX-FORWARD), for the given bridges only: a rule whose -i or -o is one
// of them. Another daemon on the host (another root, or an older version
// still running) keeps its own. The chain itself is the plugin's and stays.
func removeLegacyIsolation(bridges []string) error {
	out, err := exec.Command("iptables", "-w", "-t", "filter", "-S", legacyAdminChain).Output()
	if err != nil {
		return nil // no such chain: nothing to remove
	}
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, `"`+isolationComment+`"`) {
			continue
		}
		args, err := splitRule(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("old isolation rule %q: %w", line, err))
			continue
		}
		if !namesBridge(args, bridges) {
			continue
		}
		args[0] = "-D"
		if err := iptables(append([]string{"-t", "filter"}, args...)...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// namesBridge reports whether a rule's -i or -o is one of bridges.
func namesBridge(args, bridges []string) bool {
	for i := 0; i+1 < len(args); i++ {
		if (args[i] == "-i" || args[i] == "-o") && slices.Contains(bridges, args[i+1]) {
			return true
		}
	}
	return false
}

// splitRule splits a line of `iptables -S` into arguments: words separated
// by spaces, where a double-quoted word (a comment) may hold spaces and
// backslash-escaped quotes.
func splitRule(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case c == ' ' && !quoted:
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}
