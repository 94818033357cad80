// Package network gives containers their network stacks with CNI: libcni
// (github.com/containernetworking/cni) driving Debian's
// containernetworking-plugins (bridge, host-local, portmap), as nerdctl
// does, plus a few iptables rules per network that fusebox owns. It knows nothing of images, the store or
// libcontainer; the daemon calls it around a container's start and stop.
//
// # Lifecycle
//
// A daemon opens one Manager at start-up with New(ctx, Config{Root:
// <root>/network, Store: its Badger-backed Store}) and calls Cleanup(ctx,
// live) with the ids of the containers whose shims survived; that tears down
// every other sandbox, including ones whose record was lost, found through
// libcni's cache, the netns directory and host-local's lease files.
//
// Running a container:
//
//  1. Parse the flags: ParseMode(--net), ParsePublish(-p) or ParseBinding
//     (Engine API PortBindings), PublishAll(-P with ParseExpose of EXPOSE and
//     --expose). These only parse; nothing is made yet.
//  2. Setup(ctx, Request{ID, Name, Hostname, Mode, Ports, MAC, IP, ...})
//     before the container starts. For bridge and none modes it makes a
//     named netns at <NetnsDir>/<id> (a bind mount of a fresh namespace, made
//     on a locked thread that is then thrown away) with lo up, and for
//     bridge runs CNI ADD with the port mappings. Host ports are checked
//     first (against other sandboxes, and by binding them for a moment),
//     so a taken port fails with ErrPortAllocated before anything exists.
//     Any failure undoes what was made.
//  3. Start the container with Sandbox.NetnsPath as the path of its network
//     namespace ("" in host mode: no new network namespace). For
//     container:<x> the daemon passes x's NetnsPath as
//     Request.ContainerNetns and gets it back.
//  4. Write the container's /etc/hosts from Hosts and its /etc/resolv.conf
//     from ResolvConf, and bind-mount them. When a container joins or leaves
//     a user network, rewrite the hosts files of Neighbours(id) with
//     WriteInPlace (in place, so the bind mounts see it).
//  5. Teardown(ctx, id) after the container's processes are gone: CNI DEL on
//     every network (veth, port mappings, lease), then the netns (lo goes
//     with it). It is idempotent.
//
// Connect and Disconnect attach a running sandbox to more networks (eth1,
// eth2, ...). CreateNetwork, RemoveNetwork, Networks, Network and Endpoints
// serve `network create/rm/ls/inspect`. PortLines and PortsColumn format
// Sandbox.Ports for `port` and the PORTS column of `ps`.
//
// # Why it is built this way
//
// One sync.Mutex serialises every CNI call together with the bookkeeping of
// ports and sandboxes: plugins read-modify-write iptables and lease files,
// and a port must not be handed to two containers by two concurrent setups.
//
// Published ports are DNAT rules (portmap), not listening sockets, so
// nothing on the host would notice a second container taking the same port;
// the manager keeps every sandbox's ports in its records (which survive a
// restart) and refuses overlaps itself. portmap's snat option masquerades
// connections from 127.0.0.1 and hairpin connections, and it sets
// route_localnet on the bridge so that 127.0.0.1 may be DNATed to a
// container: `curl localhost:5000` works with no sysctl set by hand. DEL
// must be given the port mappings again or portmap does nothing, so every
// DEL uses the config and capability args libcni cached at ADD.
//
// Names between containers on user-defined networks resolve through
// /etc/hosts, not an embedded DNS server as in Docker. A hosts file needs no
// server process per network, no port 53 inside each netns, and no resolver
// that must outlive daemon restarts; its cost is that the daemon rewrites
// the hosts files of a network's members when one joins or leaves, which
// Hosts and Neighbours make a loop of a few lines. What it cannot do that
// DNS does: names of containers that appear later are only seen once the
// file is rewritten (immediately, by the daemon), and round-robin aliases
// give the first address only. As in Docker, the default bridge resolves
// only --link names.
//
// A container's start and stop cost as few execs as CNI allows, because
// each costs 15-25 ms and the daemon does them around every `run`: ADD and
// DEL run the bridge plugin and host-local (two execs each), plus portmap
// only for a container that publishes ports. lo is brought up with an ioctl
// when the namespace is made, not by the loopback plugin. Nothing per
// container touches iptables: what the bridge plugin's ipMasq and the
// firewall plugin did for each container is done once per network, as
// Docker does, by rules that are added when a network is created (and again
// by New, after a reboot) and removed with it:
//
//   - in the nat table, `-s SUBNET ! -o BRIDGE -j MASQUERADE`;
//   - in fusebox's filter chain FUSEBOX-FORWARD, jumped to from the top of
//     FORWARD: first the isolation rules, which drop what the host would
//     route from one fusebox bridge to another and everything leaving an
//     --internal network, as in Docker; then ACCEPT for what leaves the
//     bridge and for what enters it as an answer (RELATED,ESTABLISHED) or
//     to a published port (DNAT), so containers work where the FORWARD
//     policy is DROP.
//
// Versions before this put the isolation rules in the firewall plugin's
// CNI-ADMIN chain; New removes them from there. Their sandboxes' other
// per-container state (loopback, firewall and masquerade rules) is removed
// through libcni's cache, which keeps the plugin list each ADD used.
//
// Even two execs are too many for a start on the default network, so with
// Config.Spare (the daemon's setting) none is on a start's path: the
// manager keeps up to two spare sandboxes on the default network, each a
// netns with eth0, an address and a lease under a key of its own
// ("spare-…", Sandbox.Key), made by Refill after a start at the lowest CPU
// priority. A Setup asking for nothing but the default network takes one
// by renaming its record. Retire, at a container's exit, turns a sandbox
// that was a spare into one again when the daemon vouches its container
// could not have changed it (not privileged, no added capabilities, not
// shared by a container: peer, no ports), and otherwise tears a
// default-network sandbox down after the exit is reported; a Setup of the
// same container waits for that, and Close for all of it (spare.go).
//
// resolv.conf follows Docker: the host's file, minus nameservers on
// localhost (unreachable from a container's own netns), Docker's public
// defaults when none remain, and --dns, --dns-search, --dns-option
// replacing their lines.
//
// The default network "bridge" uses the bridge fusebox0 and 172.29.0.0/16,
// inside Docker's 172.16/12 habit but clear of docker0's 172.17; user
// networks get 172.30/16, 172.31/16, then /24s of 10.213/16, skipping
// subnets that overlap other networks or the host's routes. Their bridges
// are named fb-<first 12 hex digits of the id>.
package network
