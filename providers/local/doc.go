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
// The package owns: the bridge, veth pairs, network namespaces, the FORWARD
// rule that lets bridge traffic through, dockerd processes and their
// directories. It must not touch anything it did not create (the host's own
// Docker engine, other clusters' bridges), must never log or store user data
// in readable form, and does not talk to the Swarm (that is providers/docker).
// It needs root and dockerd; without them New returns an error saying so.
package local
