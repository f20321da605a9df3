package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/swarmsync/swarmsync/providers"
)

// The values an observation may hold, as the providers write them.
var (
	instanceStates = []providers.InstanceState{providers.StatePending, providers.StateRunning, providers.StateShuttingDown,
		providers.StateTerminated, providers.StateStopping, providers.StateStopped}
	nodeRoles          = []providers.Role{providers.RoleManager, providers.RoleWorker}
	nodeAvailabilities = []providers.Availability{providers.AvailabilityActive, providers.AvailabilityPause, providers.AvailabilityDrain}
	nodeStates         = []providers.NodeState{providers.NodeReady, providers.NodeDown, providers.NodeUnknown, providers.NodeDisconnected}
	reachabilities     = []providers.Reachability{"", providers.Reachable, providers.Unreachable, providers.ReachUnknown}
)

// check says everything wrong with an observation read from a file, one
// problem per line, each naming the field by its JSON path and position in
// the file's lists: empty or duplicate ids, and states, roles,
// availabilities and reachabilities no provider writes. The planner trusts
// what passes.
func (o Observed) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// once records id at its place in seen, or reports it missing or twice.
	once := func(seen map[string]string, kind, id, at string) {
		switch prev, dup := seen[id]; {
		case id == "":
			bad("%s.id: missing: every %s needs its id", at, kind)
		case dup:
			bad("%s.id: %s %q is listed twice (also %s): an observation lists each %s once", at, kind, id, prev, kind)
		default:
			seen[id] = at
		}
	}
	ids := map[string]string{}
	instances := func(list string, in []providers.Instance) {
		for i, x := range in {
			at := fmt.Sprintf("%s[%d]", list, i)
			once(ids, "instance", x.ID, at)
			if !slices.Contains(instanceStates, x.State) {
				bad("%s.state: unknown instance state %q: expected one of %s", at, x.State, join(instanceStates))
			}
		}
	}
	instances("instances", o.Instances)
	instances("unowned", o.Unowned)
	nodes := map[string]string{}
	leaders := 0
	for i, n := range o.Swarm.Nodes {
		at := fmt.Sprintf("swarm.nodes[%d]", i)
		once(nodes, "node", n.ID, at)
		if !slices.Contains(nodeRoles, n.Role) {
			bad("%s.role: unknown role %q: expected one of %s", at, n.Role, join(nodeRoles))
		}
		if !slices.Contains(nodeAvailabilities, n.Availability) {
			bad("%s.availability: unknown availability %q: expected one of %s", at, n.Availability, join(nodeAvailabilities))
		}
		if !slices.Contains(nodeStates, n.State) {
			bad("%s.state: unknown node state %q: expected one of %s", at, n.State, join(nodeStates))
		}
		if !slices.Contains(reachabilities, n.Reachability) {
			bad("%s.reachability: unknown reachability %q: expected one of %s", at, n.Reachability, join(reachabilities[1:]))
		}
		if n.Leader {
			if leaders++; leaders == 2 {
				bad("%s.leader: a second leader: a Swarm has one", at)
			}
			if n.Role != providers.RoleManager {
				bad("%s.leader: the leader is a %s: only a manager leads", at, n.Role)
			}
		}
	}
	return errors.Join(errs...)
}

func join[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
