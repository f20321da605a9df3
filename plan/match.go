package plan

import (
	"net"

	"github.com/swarmsync/swarmsync/providers"
)

// How a node was matched to its instance.
const (
	MatchByLabel = "engine-label"
	MatchByAddr  = "address"
)

// Match links Swarm nodes to instances. instances and nodes are visited in
// the given order (pass them in canonical order for a deterministic result).
// It returns, for each node index, the index of its instance (-1 when none)
// and how it was matched.
//
// The rules, strongest key first:
//  1. the engine label swarmsync.instance names the instance. A node that
//     carries the label is matched by it or not at all: its machine may be
//     gone and its address reused by a newer instance.
//  2. a node without the label is matched by address against an instance's
//     private IP not matched yet: a manager's ManagerAddr host part first,
//     then Status.Addr. When two nodes claim the same address, the first one
//     that is not Down wins, then the first in order.
//
// Hostnames are never used: they are the weakest key.
func Match(instances []providers.Instance, nodes []providers.Node) (instOf []int, how []string) {
	instOf = make([]int, len(nodes))
	how = make([]string, len(nodes))
	byID := make(map[string]int, len(instances))
	byIP := make(map[string]int, len(instances))
	for i, in := range instances {
		if _, dup := byID[in.ID]; !dup {
			byID[in.ID] = i
		}
		if in.PrivateIP != "" && in.State.Live() {
			if _, dup := byIP[in.PrivateIP]; !dup {
				byIP[in.PrivateIP] = i
			}
		}
	}
	taken := make(map[int]bool, len(nodes))
	for ni, n := range nodes {
		instOf[ni] = -1
		id := n.InstanceID()
		if id == "" {
			continue
		}
		if ii, ok := byID[id]; ok && !taken[ii] {
			instOf[ni], how[ni] = ii, MatchByLabel
			taken[ii] = true
		}
	}
	// Address matching: nodes that are not Down first, so a live node wins
	// an address over the dead one it replaced.
	for _, wantDown := range []bool{false, true} {
		for ni, n := range nodes {
			if n.InstanceID() != "" || instOf[ni] >= 0 || (n.State == providers.NodeDown) != wantDown {
				continue
			}
			for _, addr := range []string{n.ManagerAddr, n.Addr} {
				if addr == "" {
					continue
				}
				if ii, ok := byIP[hostPart(addr)]; ok && !taken[ii] {
					instOf[ni], how[ni] = ii, MatchByAddr
					taken[ii] = true
					break
				}
			}
		}
	}
	return instOf, how
}

// hostPart returns the host of "host:port", or addr itself.
func hostPart(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
