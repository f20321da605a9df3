package plan

import (
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// classified is the observation sorted into what the planner acts on (the
// rules are in the package documentation, "Classification").
type classified struct {
	groups map[string]*groupState // by group name, for every group seen or desired
	// deadManagers are owned (or owned-looking) raft members that are not
	// reachable: demoted and removed first, which is always quorum-safe.
	deadManagers []*member
	// strayManagers are managers in a worker group (or a removed group):
	// demoted when quorum allows.
	strayManagers []*member
	// unattributed are worker nodes whose instance the cloud does not list
	// yet and that carry no swarmsync.group label.
	unattributed  []*member
	foreign       []*providers.Node // nodes swarmsync does not own: never touched
	raftMembers   int
	raftReachable int
	leader        string // node id
	noSwarm       bool
	// ghosts are worker entries of joins that never completed (ghost.go):
	// removed. ghostManagers are manager ones: only noted. joining are
	// worker entries no engine has described yet, created less than
	// update.joinTimeout ago: left alone, noted.
	ghosts, ghostManagers, joining []*providers.Node
}

// groupState is one group's members by what must happen to them.
type groupState struct {
	name    string
	kept    []*member // joined or pending members that count toward the group
	pending []*member // owned instances whose node has not joined yet (within joinTimeout)
	stale   []*member // owned instances whose node never joined within joinTimeout
	// evidence are stale instances of the current config kept while the
	// group's new machines fail to join (joinfail.go); the group launches
	// nothing while there are any.
	evidence []*member
	// staleLeft counts the live instances whose node never joined that
	// stay after this pass (evidence, and stale instances the removal
	// budget defers): they hold surge slots.
	staleLeft int
	// orphans are nodes of the group whose instance is gone: Down ones,
	// and workers whose instance is listed as terminated (gone).
	orphans []*member
	// waiting are nodes of the group that are not Down although their
	// instance is gone, and that cannot be removed yet: a reachable
	// manager whose instance is listed as terminated, or a node without
	// the engine label that matches no live instance. Removed once Down.
	waiting []*member
	// broken are workers of a declared group whose node is Down although
	// their instance runs, launched more than joinTimeout ago: replaced.
	broken []*member
	// misplaced are managers-group members whose node is a worker (an
	// interrupted removal): they leave.
	misplaced []*member
}

// group returns the state of the named group, creating it when needed.
func (c *classified) group(name string) *groupState {
	g := c.groups[name]
	if g == nil {
		g = &groupState{name: name}
		c.groups[name] = g
	}
	return g
}

// classify sorts the observation into members, orphans and raft counts.
func (b *builder) classify() {
	c := &b.c
	c.groups = map[string]*groupState{}
	c.group(schema.ManagersGroup)
	for name := range b.d.Workers {
		c.group(schema.WorkerGroupName(name))
	}
	nodes := b.o.Swarm.Nodes
	c.noSwarm = !b.o.Swarm.Active || len(nodes) == 0
	owned := len(b.o.Instances)
	all := make([]providers.Instance, 0, owned+len(b.o.Unowned))
	all = append(all, b.o.Instances...)
	all = append(all, b.o.Unowned...)
	instOf, _ := Match(all, nodes)
	var listed map[string]int // index in all of the instance ids the cloud lists, built when first needed
	lookup := func(id string) (int, bool) {
		if listed == nil {
			listed = make(map[string]int, len(all))
			for i := len(all) - 1; i >= 0; i-- {
				listed[all[i].ID] = i
			}
		}
		i, ok := listed[id]
		return i, ok
	}
	nodeOf := make([]int, owned)
	for i := range nodeOf {
		nodeOf[i] = -1
	}
	for ni := range nodes {
		n := &nodes[ni]
		if n.Role == providers.RoleManager {
			c.raftMembers++
			if reachable(n) {
				c.raftReachable++
			}
			if n.Leader && reachable(n) {
				// A Down node may still carry the leader flag it had
				// before it went Down: only a reachable manager leads.
				c.leader = n.ID
			}
		}
		ii := instOf[ni]
		switch {
		case ii >= owned:
			c.foreign = append(c.foreign, n) // an unowned instance's node
			continue
		case ii >= 0 && all[ii].State.Live():
			nodeOf[ii] = ni
			continue
		}
		// A node without a live owned instance: ours when it carries our
		// engine label or group label; else a ghost entry or foreign.
		gname := n.Labels[providers.NodeLabelGroup]
		switch young := n.CreatedAt.Add(b.d.Update.JoinTimeout.Duration).After(b.now); {
		case n.InstanceID() != "" || gname != "":
		case !Undescribed(n) || n.CreatedAt.IsZero() || (young && n.Role == providers.RoleManager):
			c.foreign = append(c.foreign, n)
			continue
		case young:
			c.joining = append(c.joining, n)
			continue
		case n.Role == providers.RoleManager:
			c.ghostManagers = append(c.ghostManagers, n)
			continue
		default:
			c.ghosts = append(c.ghosts, n)
			continue
		}
		if id := n.InstanceID(); id != "" && n.State != providers.NodeDown {
			if _, ok := lookup(id); !ok {
				b.classifyUnlisted(n, gname)
				continue
			}
		}
		var gone *providers.Instance
		if id := n.InstanceID(); id != "" && n.Role != providers.RoleManager && n.State != providers.NodeDown {
			if i, ok := lookup(id); ok && i < owned && !all[i].State.Live() {
				gone = &all[i]
				if gname == "" {
					gname = gone.Group
				}
			}
		}
		if gname == "" {
			gname = "unknown"
		}
		m := &member{node: n, group: gname, gone: gone != nil}
		switch {
		case n.Role == providers.RoleManager && !reachable(n):
			c.deadManagers = append(c.deadManagers, m)
		case n.State != providers.NodeDown && gone == nil:
			c.group(gname).waiting = append(c.group(gname).waiting, m)
		default:
			c.group(gname).orphans = append(c.group(gname).orphans, m)
		}
	}
	joinTimeout := b.d.Update.JoinTimeout.Duration
	for i := range b.o.Instances {
		in := &b.o.Instances[i]
		if !in.State.Live() {
			continue
		}
		g := c.group(in.Group)
		m := &member{inst: in, group: in.Group}
		if want := b.digest(in.Group); want != "" && in.Config != want {
			m.outdated = true
		}
		if ni := nodeOf[i]; ni >= 0 {
			m.node = &nodes[ni]
		}
		_, declared := desiredCount(b.d, in.Group)
		switch {
		case m.node == nil && !in.LaunchedAt.Add(joinTimeout).After(b.now):
			m.stale = true
			g.stale = append(g.stale, m)
		case m.node == nil:
			g.pending = append(g.pending, m)
			g.kept = append(g.kept, m)
		case m.isManager() && !reachable(m.node) && b.holdDown(m):
			g.kept = append(g.kept, m)
		case m.isManager() && !reachable(m.node):
			c.deadManagers = append(c.deadManagers, m)
		case m.isManager() && in.Group != schema.ManagersGroup:
			c.strayManagers = append(c.strayManagers, m)
			g.kept = append(g.kept, m)
		case !m.isManager() && in.Group == schema.ManagersGroup:
			g.misplaced = append(g.misplaced, m)
		case m.node.State == providers.NodeDown && declared && b.holdDown(m):
			g.kept = append(g.kept, m)
		case m.node.State == providers.NodeDown && declared:
			g.broken = append(g.broken, m)
		default:
			g.kept = append(g.kept, m)
		}
	}
}

// classifyUnlisted places a node that is not Down and whose engine label
// names an instance the cloud does not list at all: a member whose
// instance the cloud has not shown yet. It counts toward its group (its
// swarmsync.group label; a manager without it belongs to the managers
// group) and is frozen; a worker without the label is unattributed.
func (b *builder) classifyUnlisted(n *providers.Node, gname string) {
	c := &b.c
	if gname == "" && n.Role == providers.RoleManager {
		gname = schema.ManagersGroup
	}
	m := &member{node: n, group: gname, frozen: true}
	if gname == "" {
		c.unattributed = append(c.unattributed, m)
		b.note("Node %s names instance %s, which the cloud does not list yet, and has no %s label yet; waiting: no worker group launches or replaces workers until the cloud lists it.", n.ID, n.InstanceID(), providers.NodeLabelGroup)
		return
	}
	g := c.group(gname)
	g.kept = append(g.kept, m)
	b.note("Node %s (group %s) names instance %s, which the cloud does not list yet; waiting: it counts toward its group and is left as it is until the cloud lists it.", n.ID, gname, n.InstanceID())
}
