package plan

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// QuorumState says how safe the raft membership is in one observation.
type QuorumState string

// Quorum states.
const (
	// QuorumHealthy: every manager is reachable.
	QuorumHealthy QuorumState = "healthy"
	// QuorumDegraded: quorum holds, but some managers are unreachable, so
	// the membership tolerates fewer further losses than it should.
	QuorumDegraded QuorumState = "degraded"
	// QuorumLost: fewer managers are reachable than quorum needs; the
	// Swarm cannot change until quorum is back.
	QuorumLost QuorumState = "lost"
	// QuorumNone: the endpoint is not part of an active swarm (or the swarm
	// has no manager), so there is no raft membership to speak of.
	QuorumNone QuorumState = "none"
)

// Health is one observation set against the spec: the raft membership and,
// per group, what runs compared with what the spec asks for. It is what
// `swarmsync status` reports besides the plan. Health is pure data and
// must not drive any change: the plan decides what to do.
type Health struct {
	Swarm  SwarmHealth   `json:"swarm"`
	Groups []GroupHealth `json:"groups"`
	// ForeignNodes counts Swarm nodes swarmsync does not own (no owned
	// instance, no swarmsync label); they are never touched.
	ForeignNodes int `json:"foreign_nodes"`
	// GhostNodes counts node entries no engine has described (no hostname,
	// no labels, not Ready): joins in progress, or that never completed
	// (the plan removes the worker ones older than update.joinTimeout).
	// They are not counted in ForeignNodes.
	GhostNodes int `json:"ghost_nodes"`
	// UnownedInstances counts instances seen without the cluster tag.
	UnownedInstances int `json:"unowned_instances"`
}

// SwarmHealth is the raft membership as the observation shows it.
type SwarmHealth struct {
	Active bool `json:"active"`
	// Leader is the raft leader, when one is known.
	Leader *NodeRef `json:"leader,omitempty"`
	// Managers is the raft membership (nodes whose role is manager);
	// Reachable counts those that are reachable and not Down, the same rule
	// the planner uses; Quorum is what the membership needs.
	Managers  int         `json:"managers"`
	Reachable int         `json:"reachable"`
	Quorum    int         `json:"quorum"`
	State     QuorumState `json:"state"`
	// Nodes counts every node of the swarm, Ready counts those that are Ready.
	Nodes int `json:"nodes"`
	Ready int `json:"ready"`
}

// AtRisk reports whether the raft membership has lost quorum or is one
// unreachable manager closer to losing it than it should be.
func (s SwarmHealth) AtRisk() bool {
	return s.State == QuorumLost || s.State == QuorumDegraded
}

// NodeRef identifies a Swarm node in a report.
type NodeRef struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname,omitempty"`
	// Addr is the manager address of a manager, else the node's address.
	Addr  string              `json:"addr,omitempty"`
	Role  providers.Role      `json:"role,omitempty"`
	State providers.NodeState `json:"state,omitempty"`
	// Instance is the instance the node's engine label names, if any.
	Instance string `json:"instance,omitempty"`
}

// InstanceRef identifies an instance in a report.
type InstanceRef struct {
	ID         string                  `json:"id"`
	State      providers.InstanceState `json:"state"`
	PrivateIP  string                  `json:"private_ip,omitempty"`
	LaunchedAt time.Time               `json:"launched_at"`
	// Age is how long before the observation the instance was launched.
	Age string `json:"age"`
}

// GroupHealth is one group: the spec's count against live instances and
// their nodes.
type GroupHealth struct {
	Name string `json:"name"`
	// Declared is false for a group that has owned machines but is no
	// longer in the spec (it goes only with safety.prune).
	Declared bool `json:"declared"`
	Desired  int  `json:"desired"`
	// Instances counts the group's live owned instances.
	Instances int `json:"instances"`
	// Ready and Down count the group's nodes: Ready, and not Ready (Down,
	// unknown or disconnected).
	Ready int `json:"ready"`
	Down  int `json:"down"`
	// OutOfDate lists live instances whose swarmsync:config differs from
	// the spec's (they are replaced by a rolling update).
	OutOfDate []string `json:"out_of_date"`
	// InstancesWithoutNode are live instances no Swarm node matches
	// (joining, or never joined).
	InstancesWithoutNode []InstanceRef `json:"instances_without_node"`
	// NodesWithoutInstance are nodes of the group with no live owned
	// instance (gone, or not listed by the cloud yet).
	NodesWithoutInstance []NodeRef `json:"nodes_without_instance"`
}

// ClusterHealth sets observed against desired. It matches nodes to instances with
// Match, exactly as Compute does, and counts reachability and quorum with
// the planner's rules. It is pure: "now" is observed.TakenAt.
func ClusterHealth(desired schema.Cluster, observed Observed) Health {
	obs := observed.Canonical()
	nodes := obs.Swarm.Nodes
	owned := len(obs.Instances)
	all := make([]providers.Instance, 0, owned+len(obs.Unowned))
	all = append(all, obs.Instances...)
	all = append(all, obs.Unowned...)
	instOf, _ := Match(all, nodes)

	h := Health{UnownedInstances: len(obs.Unowned)}
	groups := map[string]*GroupHealth{}
	group := func(name string) *GroupHealth {
		g := groups[name]
		if g == nil {
			g = &GroupHealth{Name: name, OutOfDate: []string{}, InstancesWithoutNode: []InstanceRef{}, NodesWithoutInstance: []NodeRef{}}
			if n, ok := desiredCount(desired, name); ok {
				g.Declared, g.Desired = true, n
			}
			groups[name] = g
		}
		return g
	}
	group(schema.ManagersGroup)
	for name := range desired.Workers {
		group(schema.WorkerGroupName(name))
	}

	s := &h.Swarm
	s.Active = obs.Swarm.Active
	hasNode := make([]bool, owned)
	for ni := range nodes {
		n := &nodes[ni]
		s.Nodes++
		if n.State == providers.NodeReady {
			s.Ready++
		}
		if n.Role == providers.RoleManager {
			s.Managers++
			if reachable(n) {
				s.Reachable++
			}
			if n.Leader && reachable(n) {
				s.Leader = nodeRef(n)
				if s.Leader.Addr == "" {
					s.Leader.Addr = obs.Swarm.LeaderAddr
				}
			}
		}
		var gname string
		ii := instOf[ni]
		switch {
		case ii >= owned:
			h.ForeignNodes++ // an unowned instance's node
			continue
		case ii >= 0 && all[ii].State.Live():
			hasNode[ii] = true
			gname = all[ii].Group
		default:
			gname = n.Labels[providers.NodeLabelGroup]
			if gname == "" && n.InstanceID() == "" && Undescribed(n) {
				h.GhostNodes++
				continue
			}
			if gname == "" && n.InstanceID() == "" {
				h.ForeignNodes++
				continue
			}
			if gname == "" && n.Role == providers.RoleManager {
				gname = schema.ManagersGroup
			}
			if gname == "" {
				gname = "unknown"
			}
			g := group(gname)
			g.NodesWithoutInstance = append(g.NodesWithoutInstance, *nodeRef(n))
		}
		g := group(gname)
		if n.State == providers.NodeReady {
			g.Ready++
		} else {
			g.Down++
		}
	}
	digests := map[string]string{}
	for i := range obs.Instances {
		in := &obs.Instances[i]
		if !in.State.Live() {
			continue
		}
		g := group(in.Group)
		g.Instances++
		want, ok := digests[in.Group]
		if !ok {
			want = ConfigDigest(desired, in.Group)
			digests[in.Group] = want
		}
		if want != "" && in.Config != want {
			g.OutOfDate = append(g.OutOfDate, in.ID)
		}
		if !hasNode[i] {
			g.InstancesWithoutNode = append(g.InstancesWithoutNode, InstanceRef{
				ID: in.ID, State: in.State, PrivateIP: in.PrivateIP, LaunchedAt: in.LaunchedAt,
				Age: age(obs.TakenAt.Sub(in.LaunchedAt)),
			})
		}
	}

	switch {
	case !s.Active || s.Managers == 0:
		s.State = QuorumNone
	default:
		s.Quorum = quorum(s.Managers)
		switch {
		case s.Reachable < s.Quorum:
			s.State = QuorumLost
		case s.Reachable < s.Managers:
			s.State = QuorumDegraded
		default:
			s.State = QuorumHealthy
		}
	}

	names := slices.Collect(maps.Keys(groups))
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := groupRank(groups[a]), groupRank(groups[b]); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	h.Groups = make([]GroupHealth, len(names))
	for i, name := range names {
		h.Groups[i] = *groups[name]
	}
	return h
}

// groupRank orders groups: managers, declared worker groups, the others.
func groupRank(g *GroupHealth) int {
	switch {
	case g.Name == schema.ManagersGroup:
		return 0
	case g.Declared:
		return 1
	}
	return 2
}

func nodeRef(n *providers.Node) *NodeRef {
	addr := n.ManagerAddr
	if addr == "" {
		addr = n.Addr
	}
	return &NodeRef{ID: n.ID, Hostname: n.Hostname, Addr: addr, Role: n.Role, State: n.State, Instance: n.InstanceID()}
}

// age renders a duration coarsely ("42s", "5m", "3h", "12d").
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Truncate(time.Second).String()
	case d < time.Hour:
		return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
	case d < 48*time.Hour:
		return strings.TrimSuffix(strings.TrimSuffix(d.Truncate(time.Hour).String(), "0s"), "0m")
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}
