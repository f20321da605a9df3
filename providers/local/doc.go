// Package local implements providers.Cloud with "machines" on this Linux
// host: each instance is a dockerd running in its own network namespace, with
// its own address on a per-cluster Linux bridge, its own hostname (UTS
// namespace), its own socket, data root and exec root under a state directory.
// Together they form a real multi-node Swarm on one box, for demos and tests.
//
// The state directory (default /var/lib/swarmsync/local) holds one JSON record
// per instance (tags, group, config, private IP, launch time, state) written
// atomically, so a later process sees the same instances. Launched dockerd
// processes are detached (setsid) and outlive the process that started them.
//
// A cloud finishes what it started: every mutation holds a lock on the state
// directory from start to end, so the next call of any process that takes
// the lock and finds an instance still pending, shutting-down or stopping
// knows its call died, and completes it (Instances does so too, unless a call
// is under way). A killed launch whose dockerd runs is booted to the end; its
// user data waits in a detached holder process (never on disk in readable
// form) until dockerd answers, so it runs exactly once. A killed launch that
// cannot be completed fails as a cloud's would: the instance is terminated.
//
// The package owns: the bridge, veth pairs, network namespaces, the FORWARD
// rule that lets bridge traffic through, dockerd processes and their
// directories. It must not touch anything it did not create (the host's own
// Docker engine, other clusters' bridges), must never log or store user data
// in readable form, and does not talk to the Swarm (that is providers/docker).
// It needs root and dockerd; without them New returns an error saying so.
//
// The host's neighbour (ARP) table is shared by every network namespace:
// before a launch, the provider computes the entries its machines may need
// (n·(n+1) per bridge of n machines) and raises
// net.ipv4.neigh.default.gc_thresh1/2/3 with a logged warning when they are
// lower, or refuses the launch naming the setting when it cannot. It never
// lowers them.
package local
