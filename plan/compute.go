package plan

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// member is one machine of the cluster as the planner sees it: an owned
// instance with its node, an owned instance whose node has not joined, or a
// node whose instance is gone.
type member struct {
	inst     *providers.Instance
	node     *providers.Node
	group    string
	outdated bool
	// joinStep is the step after which a pending instance's node exists
	// and is labelled ("" when the node exists already), or the demotion
	// a stray manager waits for. Later steps on the member depend on it.
	joinStep string
	// joiningManager marks a pending manager planned to join: once its
	// await-join is done it is a reachable raft member.
	joiningManager bool
	// frozen members count toward their group but are not changed in this
	// pass (a stray manager that cannot be demoted yet).
	frozen bool
	// stale marks an instance whose node never joined within joinTimeout.
	stale bool
	// unlisted marks a node whose engine label names an instance the
	// cloud does not list (yet) while the node is not Down: a member whose
	// instance the cloud has not shown yet (see classify). It is frozen.
	unlisted bool
	// gone marks a worker node that is not Down although the cloud lists
	// the instance its engine label names as terminated: an orphan
	// removed without waiting for a later pass (apply's remove-node waits
	// until it is Down).
	gone bool
}

// orphanReason is why an orphan's node is removed.
func orphanReason(m *member) string {
	if m.gone {
		return "its instance is terminated: the node is removed once the Swarm sees it Down (the step waits for it)"
	}
	return "the node is Down and its instance is gone"
}

func (m *member) id() string {
	if m.inst != nil {
		return m.inst.ID
	}
	return m.node.ID
}

func (m *member) zone() string {
	if m.inst != nil {
		return m.inst.Zone
	}
	return ""
}

func (m *member) launched() time.Time {
	if m.inst != nil {
		return m.inst.LaunchedAt
	}
	return m.node.CreatedAt
}

// down reports whether the member's node exists and is not Ready.
func (m *member) down() bool { return m.node != nil && m.node.State != providers.NodeReady }

// ready reports whether the member's node is Ready, or will be once its
// pending join is awaited.
func (m *member) ready() bool {
	return m.joinStep != "" || (m.node != nil && m.node.State == providers.NodeReady)
}

func (m *member) isManager() bool {
	return m.joiningManager || (m.node != nil && m.node.Role == providers.RoleManager)
}

// isReachable reports whether m counts as a reachable raft member.
func (m *member) isReachable() bool {
	return m.joiningManager || (m.node != nil && reachable(m.node))
}

func (m *member) isLeader(leader string) bool { return m.node != nil && m.node.ID == leader }

func reachable(n *providers.Node) bool {
	return n.Role == providers.RoleManager && n.Reachability == providers.Reachable && n.State != providers.NodeDown
}

// quorum is the number of reachable members a raft membership of n needs.
func quorum(n int) int { return n/2 + 1 }

// classified is the observation sorted into what the planner acts on.
type classified struct {
	groups map[string]*groupState // by group name, for every group seen or desired
	// deadManagers are owned (or owned-looking) raft members that are not
	// reachable: demoted and removed first, which is always quorum-safe.
	deadManagers []*member
	// strayManagers are managers in a worker group (or a removed group):
	// demoted when quorum allows.
	strayManagers []*member
	// unattributed are worker nodes whose instance the cloud does not list
	// yet and that carry no swarmsync.group label: they may belong to any
	// worker group, so no worker group launches while they exist.
	unattributed  []*member
	foreign       []*providers.Node // nodes swarmsync does not own: never touched
	raftMembers   int
	raftReachable int
	leader        string // node id
	noSwarm       bool
}

// groupState is one group's members by what must happen to them.
type groupState struct {
	name    string
	kept    []*member // joined or pending members that count toward the group
	pending []*member // owned instances whose node has not joined yet (within joinTimeout)
	stale   []*member // owned instances whose node never joined within joinTimeout
	// orphans are nodes of the group whose instance is gone: Down ones,
	// and workers whose instance is listed as terminated (gone).
	orphans []*member
	// waiting are nodes of the group that are not Down although their
	// instance is gone, and that cannot be removed yet: a reachable
	// manager whose instance is listed as terminated (removing it needs a
	// demotion, planned once it is unreachable), or a node without the
	// engine label that matches no live instance (nothing says which
	// instance was its own). Removed once Down.
	waiting []*member
	// unlisted are nodes of the group, not Down, whose engine label names an
	// instance the cloud does not list yet; they are also in kept (frozen).
	unlisted []*member
	// broken are workers of a declared group whose node is Down although
	// their instance runs, launched more than joinTimeout ago: replaced.
	broken []*member
	// misplaced are managers-group members whose node is a worker (an
	// interrupted removal): they leave.
	misplaced []*member
}

// Compute returns the plan that brings observed to desired. It is pure and
// deterministic: identical inputs give byte-identical plan JSON. "Now" is
// observed.TakenAt. It returns a *RefusedError when the plan would break a
// blast-radius rule of the spec.
func Compute(desired schema.Cluster, observed Observed, src Source) (*Plan, error) {
	if observed.Cluster != "" && observed.Cluster != desired.Name {
		return nil, fmt.Errorf("failed to plan: the observation is of cluster %q, the spec is cluster %q", observed.Cluster, desired.Name)
	}
	switch desired.Managers.Count {
	case 1, 3, 5, 7:
	default:
		return nil, fmt.Errorf("failed to plan cluster %q: managers.count is %d, want 1, 3, 5 or 7", desired.Name, desired.Managers.Count)
	}
	obs := observed.Canonical()
	win, err := disruptionWindows(desired.Schedule.DisruptionWindows, obs.TakenAt)
	if err != nil {
		return nil, fmt.Errorf("failed to plan cluster %q: %w", desired.Name, err)
	}
	b := newBuilder(desired, obs)
	b.hold, b.nextWindow = !win.open, win.next
	if b.rotationAt, b.rotationDue, err = rotationDue(desired.Schedule.RotateJoinTokens, obs.Swarm, obs.TakenAt); err != nil {
		return nil, fmt.Errorf("failed to plan cluster %q: %w", desired.Name, err)
	}
	p := &Plan{
		FormatVersion: FormatVersion,
		Cluster:       desired.Name,
		Source:        src,
		Desired:       desired,
		Observation: ObservationSummary{
			Fingerprint: fingerprint(obs),
			Instances:   len(obs.Instances),
			Nodes:       len(obs.Swarm.Nodes),
			Managers:    b.c.raftMembers,
			Leader:      b.c.leader,
			TakenAt:     obs.TakenAt,
		},
	}
	if err := b.build(); err != nil {
		return nil, err
	}
	p.Steps = b.steps
	if p.Steps == nil {
		p.Steps = []Step{}
	}
	p.Notes = b.notes
	p.Summary = map[Action]int{}
	for _, s := range p.Steps {
		p.Summary[s.Action]++
	}
	return p, nil
}

// builder accumulates steps while tracking the raft membership, so every
// raft change is checked against quorum as it is planned.
type builder struct {
	d     schema.Cluster
	o     Observed
	now   time.Time
	c     classified
	steps []Step
	ids   map[string]bool
	notes []string
	// child marks steps that another step depends on (for leaves()).
	child map[string]bool

	members, reach int    // raft membership as planned so far
	leader         string // current leader node id as planned so far

	// budget is what is left of safety.maxRemovalsPerApply; reserved is
	// the number of self-healing and spec-requested removals not planned
	// yet, which replacements may not use.
	budget, reserved int
	healDeferred     int
	replaceDeferred  int

	digests map[string]string // ConfigDigest per group
	wants   map[string]wantedState

	launchSeq     map[string]int
	joins         []string // await-join step ids
	workerJoined  bool
	managerJoined bool
	batch         map[string]int

	// hold is set when the spec declares disruption windows and none is
	// open at now: disruptive changes are held back (see allow).
	hold       bool
	nextWindow time.Time
	held       int // disruptive changes held back

	// rotationDue is set when schedule.rotateJoinTokens is due at now;
	// rotationAt is the activation that made it due (see rotation.go).
	rotationDue bool
	rotationAt  time.Time
}

func newBuilder(d schema.Cluster, o Observed) *builder {
	b := &builder{d: d, o: o, now: o.TakenAt, ids: map[string]bool{}, child: map[string]bool{},
		launchSeq: map[string]int{}, batch: map[string]int{}, digests: map[string]string{}, wants: map[string]wantedState{}}
	b.classify()
	return b
}

func (b *builder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func slug(group string) string { return strings.ReplaceAll(group, "/", "-") }

// add appends s with a unique stable id built from its action, group and
// target, and returns the id.
func (b *builder) add(s Step, target string) string {
	id := fmt.Sprintf("%s-%s-%s", s.Action, slug(s.Group), target)
	if s.Group == "" {
		id = fmt.Sprintf("%s-%s", s.Action, target)
	}
	if b.ids[id] {
		for i := 2; ; i++ {
			if alt := fmt.Sprintf("%s-%d", id, i); !b.ids[alt] {
				id = alt
				break
			}
		}
	}
	b.ids[id] = true
	s.ID = id
	s.DependsOn = compactDeps(s.DependsOn)
	for _, d := range s.DependsOn {
		b.child[d] = true
	}
	b.steps = append(b.steps, s)
	return id
}

func compactDeps(deps []string) []string {
	out := deps[:0:0]
	for _, d := range deps {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func deps(ids ...string) []string { return ids }

// classify sorts the observation into members, orphans and raft counts.
func (b *builder) classify() {
	c := &b.c
	c.groups = map[string]*groupState{}
	group := func(name string) *groupState {
		g := c.groups[name]
		if g == nil {
			g = &groupState{name: name}
			c.groups[name] = g
		}
		return g
	}
	group(schema.ManagersGroup)
	for name := range b.d.Workers {
		group(schema.WorkerGroupName(name))
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
	isListed := func(id string) bool {
		_, ok := lookup(id)
		return ok
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
			if n.Leader {
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
		// A node without a live owned instance. It is ours when it carries
		// our engine label or group label; otherwise it is left alone.
		gname := n.Labels[providers.NodeLabelGroup]
		if n.InstanceID() == "" && gname == "" {
			c.foreign = append(c.foreign, n)
			continue
		}
		if id := n.InstanceID(); id != "" && n.State != providers.NodeDown && !isListed(id) {
			b.classifyUnlisted(n, gname)
			continue
		}
		// A worker node, not Down, whose engine label names an owned
		// instance the cloud lists as gone (terminated, shutting down):
		// its machine is known to be gone, it is removed now (apply waits
		// until the Swarm sees it Down).
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
			group(gname).waiting = append(group(gname).waiting, m)
		default:
			group(gname).orphans = append(group(gname).orphans, m)
		}
	}
	joinTimeout := b.d.Update.JoinTimeout.Duration
	for i := range b.o.Instances {
		in := &b.o.Instances[i]
		if !in.State.Live() {
			continue
		}
		g := group(in.Group)
		m := &member{inst: in, group: in.Group}
		if want := b.digest(in.Group); want != "" && in.Config != want {
			m.outdated = true
		}
		if ni := nodeOf[i]; ni >= 0 {
			m.node = &nodes[ni]
		}
		switch {
		case m.node == nil && !in.LaunchedAt.Add(joinTimeout).After(b.now):
			m.stale = true
			g.stale = append(g.stale, m)
		case m.node == nil:
			g.pending = append(g.pending, m)
			g.kept = append(g.kept, m)
		case m.isManager() && !reachable(m.node):
			c.deadManagers = append(c.deadManagers, m)
		case m.isManager() && in.Group != schema.ManagersGroup:
			c.strayManagers = append(c.strayManagers, m)
			g.kept = append(g.kept, m)
		case !m.isManager() && in.Group == schema.ManagersGroup:
			g.misplaced = append(g.misplaced, m)
		case m.node.State == providers.NodeDown && !in.LaunchedAt.Add(joinTimeout).After(b.now) && b.declared(in.Group):
			// The observation has no "Down since". Down is Swarm's verdict
			// after missed heartbeats; an instance older than joinTimeout
			// had its chance to come up, so a Down node of it is treated
			// like one that never joined: it is replaced. A node Down
			// within joinTimeout of its launch is still given time.
			g.broken = append(g.broken, m)
		default:
			g.kept = append(g.kept, m)
		}
	}
}

// classifyUnlisted places a node that is not Down and whose engine label
// names an instance the cloud does not list at all (neither live nor
// terminated). The cloud's listing is eventually consistent (EC2
// DescribeInstances may omit an instance for a while after its launch),
// while the node's heartbeat shows that its machine runs: so it is a member
// whose instance the cloud has not shown yet, not a node whose instance is
// gone. The rules:
//   - it counts toward its group, so the group is not topped up a second
//     time (no duplicate launch), and it is frozen: no step of this pass
//     drains, demotes, removes, relabels or replaces it (its instance
//     cannot be seen, so nothing about it can be checked);
//   - its group is its swarmsync.group label; a manager without the label
//     belongs to the managers group (only that group launches managers);
//   - a worker without the label (it joined, and the pass that launched it
//     stopped before labelling it) could belong to any worker group: no
//     worker group launches in this pass, since any of them might be the
//     one it tops up (see unattributed); scale-down and self-healing of
//     what is already dead go on;
//   - only a Down node whose instance is not listed is treated as gone
//     (self-healing, DESIGN safety rule 4): a machine that is really gone
//     stops its heartbeat and its node turns Down.
//
// Once the cloud lists the instance the node is matched as usual.
func (b *builder) classifyUnlisted(n *providers.Node, gname string) {
	c := &b.c
	if gname == "" && n.Role == providers.RoleManager {
		gname = schema.ManagersGroup
	}
	m := &member{node: n, group: gname, frozen: true, unlisted: true}
	if gname == "" {
		c.unattributed = append(c.unattributed, m)
		b.note("Node %s names instance %s, which the cloud does not list yet, and has no %s label yet; waiting: no worker group launches or replaces workers until the cloud lists it.", n.ID, n.InstanceID(), providers.NodeLabelGroup)
		return
	}
	g := c.groups[gname]
	if g == nil {
		g = &groupState{name: gname}
		c.groups[gname] = g
	}
	g.unlisted = append(g.unlisted, m)
	g.kept = append(g.kept, m)
	b.note("Node %s (group %s) names instance %s, which the cloud does not list yet; waiting: it counts toward its group and is left as it is until the cloud lists it.", n.ID, gname, n.InstanceID())
}

// declared reports whether the spec declares group.
func (b *builder) declared(group string) bool {
	_, ok := b.desiredCount(group)
	return ok
}

// desiredCount returns the spec's count for group and whether the spec
// declares it.
func (b *builder) desiredCount(group string) (int, bool) {
	if group == schema.ManagersGroup {
		return b.d.Managers.Count, true
	}
	g, ok := workerGroup(b.d, group)
	return g.Count, ok
}

// digest is ConfigDigest, computed once per group.
func (b *builder) digest(group string) string {
	d, ok := b.digests[group]
	if !ok {
		d = ConfigDigest(b.d, group)
		b.digests[group] = d
	}
	return d
}

// wantedState is what the spec wants on a group's nodes.
type wantedState struct {
	labels map[string]string
	keys   []string // sorted keys of labels
	avail  providers.Availability
	// managed is the NodeLabelManaged value ("" when the spec sets no
	// labels) and spec the spec label keys it lists.
	managed string
	spec    map[string]bool
}

// want returns wanted(group), computed once per group. Callers must not
// modify the labels.
func (b *builder) want(group string) wantedState {
	w, ok := b.wants[group]
	if !ok {
		w.labels, w.avail = b.wanted(group)
		w.keys = slices.Sorted(maps.Keys(w.labels))
		w.managed = w.labels[NodeLabelManaged]
		w.spec = map[string]bool{}
		for _, k := range specKeys(w.labels) {
			w.spec[k] = true
		}
		b.wants[group] = w
	}
	return w
}

// wanted returns the labels and availability the spec wants on group's
// nodes: the spec's labels, the group label and, when the spec sets labels,
// NodeLabelManaged listing their keys.
func (b *builder) wanted(group string) (map[string]string, providers.Availability) {
	var labels map[string]string
	var avail string
	if group == schema.ManagersGroup {
		labels, avail = b.d.Managers.Labels, b.d.Managers.Availability
		if avail == "" {
			avail = string(providers.AvailabilityDrain)
		}
	} else {
		g, _ := workerGroup(b.d, group)
		labels, avail = g.Labels, g.Availability
		if avail == "" {
			avail = string(providers.AvailabilityActive)
		}
	}
	out := make(map[string]string, len(labels)+2)
	maps.Copy(out, labels)
	if keys := specKeys(labels); len(keys) > 0 {
		out[NodeLabelManaged] = encodeManaged(keys)
	}
	out[providers.NodeLabelGroup] = group
	return out, providers.Availability(avail)
}

func (b *builder) sortedGroups() []string {
	names := slices.Collect(maps.Keys(b.c.groups))
	sort.Strings(names)
	return names
}

// intentional counts the removals the spec asks for (scale-down and prune)
// and checks the blast-radius rules.
func (b *builder) intentional() (int, error) {
	total := 0
	var emptied []string
	for _, name := range b.sortedGroups() {
		g := b.c.groups[name]
		want, declared := b.desiredCount(name)
		switch {
		case !declared && name != "unknown":
			if b.d.Safety.Prune {
				total += len(g.kept) + len(g.stale)
			}
		case name == schema.ManagersGroup:
			total += max(0, len(g.kept)-want)
		case declared:
			total += max(0, len(g.kept)-want)
			if want == 0 && !b.d.Safety.AllowEmpty && slices.ContainsFunc(g.kept, func(m *member) bool {
				return !m.down() // Ready, or about to join
			}) {
				emptied = append(emptied, name)
			}
		}
	}
	if len(emptied) > 0 {
		return 0, &RefusedError{Limit: "allowEmpty", Field: "safety.allowEmpty",
			Detail: fmt.Sprintf("the spec sets count 0 for %s, which would remove every running node of the group; set safety.allowEmpty: true in the spec of cluster %q to allow it", strings.Join(emptied, ", "), b.d.Name)}
	}
	if limit := b.d.Safety.MaxRemovalsPerApply; total > limit {
		return 0, &RefusedError{Limit: "maxRemovalsPerApply", Field: "safety.maxRemovalsPerApply",
			Detail: fmt.Sprintf("the plan would remove %d nodes, more than the limit of %d; raise safety.maxRemovalsPerApply in the spec of cluster %q, or reduce the counts in smaller steps", total, limit, b.d.Name)}
	}
	return total, nil
}

func (b *builder) build() error {
	c := &b.c
	b.members, b.reach, b.leader = c.raftMembers, c.raftReachable, c.leader
	if c.noSwarm {
		if len(liveOwned(b.o.Instances)) == 0 {
			if _, err := b.intentional(); err != nil {
				return err
			}
			b.bootstrap()
			return nil
		}
		b.note("No Swarm is reachable although %d owned instances exist: nothing is planned. If the first manager is still starting, wait for it; otherwise check the Docker endpoint (DOCKER_HOST), or destroy the cluster and apply again.", len(liveOwned(b.o.Instances)))
		return nil
	}
	if c.raftMembers == 0 || c.raftReachable < quorum(c.raftMembers) {
		b.note("Quorum is lost: %d of %d managers are reachable, %d are needed. swarmsync plans nothing until quorum is back. If the unreachable managers cannot come back, recover by hand: on one surviving manager run `docker swarm init --force-new-cluster --advertise-addr <its address>`, then run swarmsync again to replace the lost managers.", c.raftReachable, c.raftMembers, quorum(c.raftMembers))
		return nil
	}
	intentional, err := b.intentional()
	if err != nil {
		return err
	}
	heal := len(c.deadManagers)
	for name, g := range c.groups {
		heal += len(g.orphans) + len(g.misplaced)
		if _, declared := b.desiredCount(name); declared {
			heal += len(g.stale) + len(g.broken)
		}
	}
	b.budget = b.d.Safety.MaxRemovalsPerApply
	b.reserved = intentional + heal

	chain := b.managers()
	for _, name := range b.sortedGroups() {
		if name != schema.ManagersGroup {
			b.workers(name)
		}
	}
	b.leaderLast(chain)
	b.foreignNotes()
	if b.healDeferred > 0 {
		b.note("%d removal(s) are left for a later pass: safety.maxRemovalsPerApply (%d) is reached in this one.", b.healDeferred, b.d.Safety.MaxRemovalsPerApply)
	}
	if b.replaceDeferred > 0 {
		b.note("%d out-of-date member(s) will be replaced in later passes: safety.maxRemovalsPerApply (%d) is reached in this one.", b.replaceDeferred, b.d.Safety.MaxRemovalsPerApply)
	}
	if b.held > 0 {
		when := "no window opens within the next five years; check schedule.disruptionWindows"
		if !b.nextWindow.IsZero() {
			when = "the next window opens at " + b.nextWindow.UTC().Format(time.RFC3339)
		}
		b.note("%d disruptive change(s) (drain, replace, scale-down, prune, demote, remove, terminate of a running member) are held back: no disruption window (schedule.disruptionWindows) is open at %s; %s.", b.held, b.now.UTC().Format(time.RFC3339), when)
	}
	return nil
}

// allow reports whether m may be taken out of the cluster now, and counts
// it as held back when not. Outside every disruption window only members
// that give nothing any more may go: taking them away costs no capacity
// and no raft vote. So self-healing of what is already dead runs at any
// time — a node that is Down (its instance gone, or a worker Down for
// longer than update.joinTimeout), an instance whose node never joined,
// and an unreachable manager whose node is Down — while a member whose
// node is Ready (or about to join), or a reachable manager, waits for a
// window: scale-down, prune, rolling replacement, demoting a stray
// manager, and removing an unreachable manager whose node still runs.
func (b *builder) allow(m *member) bool {
	joining := m.node == nil && m.inst != nil && !m.stale
	if !b.hold || !(m.ready() || m.isReachable() || joining) {
		return true
	}
	b.held++
	return false
}

func liveOwned(in []providers.Instance) []providers.Instance {
	var out []providers.Instance
	for _, x := range in {
		if x.State.Live() {
			out = append(out, x)
		}
	}
	return out
}

// takeHeal takes one removal from the budget for self-healing or for a
// removal the spec asks for. Removals are planned in this order: broken
// managers first (they unblock quorum), then the other groups; what does
// not fit is left for the next pass.
func (b *builder) takeHeal() bool {
	b.reserved--
	if b.budget > 0 {
		b.budget--
		return true
	}
	b.healDeferred++
	return false
}

// takeReplace takes one removal for a rolling replacement, from what is
// not reserved for self-healing and spec-requested removals.
func (b *builder) takeReplace() bool {
	if b.budget-max(0, b.reserved) > 0 {
		b.budget--
		return true
	}
	b.replaceDeferred++
	return false
}

// bootstrap plans an empty cluster: the first manager initialises the
// Swarm, the other managers join one at a time, the workers join once the
// Swarm exists.
func (b *builder) bootstrap() {
	var first string
	prev := ""
	for i := 0; i < b.d.Managers.Count; i++ {
		reason := "join the Swarm as a manager (one raft change at a time)"
		if i == 0 {
			reason = "initialise the Swarm: the cluster has no manager"
		}
		prev = b.launch(schema.ManagersGroup, 1, i == 0, reason, 0, prev)
		if i == 0 {
			first = prev
		}
	}
	for _, name := range slices.Sorted(maps.Keys(b.d.Workers)) {
		if n := b.d.Workers[name].Count; n > 0 {
			b.launch(schema.WorkerGroupName(name), n, false, fmt.Sprintf("the group has 0 of %d workers", n), 0, first)
		}
	}
	b.rotate(nil)
}

// launch plans launch → await-join → label for count new machines of group
// and returns the id of the label step (the point where they are in place).
func (b *builder) launch(group string, count int, init bool, reason string, batch int, after ...string) string {
	b.launchSeq[group]++
	n := fmt.Sprint(b.launchSeq[group])
	role := providers.RoleWorker
	if group == schema.ManagersGroup {
		role = providers.RoleManager
	}
	launch := b.add(Step{Action: ActionLaunch, Group: group, Count: count, Role: role, Init: init,
		Config: b.digest(group), Reason: reason, DependsOn: after, Batch: batch}, n)
	what := "the new node"
	if count > 1 {
		what = fmt.Sprintf("the %d new nodes", count)
	}
	join := b.add(Step{Action: ActionAwaitJoin, Group: group, LaunchStep: launch, Batch: batch,
		Reason: fmt.Sprintf("wait until %s joined (bounded by update.joinTimeout)", what), DependsOn: deps(launch)}, n)
	b.joins = append(b.joins, join)
	if role == providers.RoleManager {
		if !init {
			b.managerJoined = true
		}
		b.members++
		b.reach++
		if init {
			b.leader = "(new)"
		}
	} else {
		b.workerJoined = true
	}
	labels, avail := b.wanted(group)
	return b.add(Step{Action: ActionLabel, Group: group, LaunchStep: launch, Labels: labels, Availability: avail, Batch: batch,
		Reason: "write the spec's labels and availability on " + what, DependsOn: deps(join)}, n)
}

// awaitPending plans await-join → label for an instance launched earlier
// whose node has not joined yet, and returns the label step id.
func (b *builder) awaitPending(m *member, after string) string {
	id := m.inst.ID
	join := b.add(Step{Action: ActionAwaitJoin, Group: m.group, Instance: id, DependsOn: deps(after),
		Reason: fmt.Sprintf("the instance was launched %s ago and its node has not joined yet (update.joinTimeout %s)", b.now.Sub(m.inst.LaunchedAt).Round(time.Second), b.d.Update.JoinTimeout.Duration)}, id)
	b.joins = append(b.joins, join)
	m.joinStep = join
	if m.group == schema.ManagersGroup {
		m.joiningManager = true
		b.managerJoined = true
		b.members++
		b.reach++
	} else {
		b.workerJoined = true
	}
	labels, avail := b.wanted(m.group)
	// Later steps on this member (a drain, if it must leave) wait for the
	// label, so they never race with it.
	m.joinStep = b.add(Step{Action: ActionLabel, Group: m.group, Instance: id, Labels: labels, Availability: avail,
		Reason: "write the spec's labels and availability on the new node", DependsOn: deps(join)}, id)
	return m.joinStep
}

// target fills a step's target fields for member m.
func target(s Step, m *member) (Step, string) {
	if m.inst != nil {
		s.Instance = m.inst.ID
	}
	if m.node != nil {
		s.Node = m.node.ID
	}
	if s.Group == "" {
		s.Group = m.group
	}
	return s, m.id()
}

// drainFirst plans drain → await-drained for a Ready node (await-drained
// alone when its availability is drain already); it returns what the next
// step depends on (after when nothing is needed).
func (b *builder) drainFirst(m *member, why string, batch int, after []string) []string {
	if !m.ready() {
		return after
	}
	if m.node != nil && m.node.Availability == providers.AvailabilityDrain {
		// Drained already, but the availability does not say its tasks
		// run elsewhere: a pass may have stopped right after its drain
		// step, or the drain is a fresh label. Wait for them (at once
		// when none is left, as on managers that run no tasks).
		s, t := target(Step{Action: ActionAwaitDrained, Reason: why + ": it is drained already; wait until no task runs on it (bounded by update.drainTimeout)", DependsOn: after, Batch: batch}, m)
		return deps(b.add(s, t))
	}
	s, t := target(Step{Action: ActionDrain, Availability: providers.AvailabilityDrain, Reason: why + ": move its tasks elsewhere first", DependsOn: after, Batch: batch}, m)
	after = deps(b.add(s, t))
	s, t = target(Step{Action: ActionAwaitDrained, Reason: "wait until its tasks run elsewhere (bounded by update.drainTimeout)", DependsOn: after, Batch: batch}, m)
	return deps(b.add(s, t))
}

func lastOf(ids []string) string {
	for i := len(ids) - 1; i >= 0; i-- {
		if ids[i] != "" {
			return ids[i]
		}
	}
	return ""
}

// workerLeave plans a worker's exit: drain → await-drained → terminate →
// remove-node (apply waits until the node is Down before removing it).
func (b *builder) workerLeave(m *member, why string, batch int, after ...string) string {
	last := b.drainFirst(m, why, batch, after)
	if m.inst != nil {
		s, t := target(Step{Action: ActionTerminate, Reason: why, DependsOn: last, Batch: batch, Removal: true}, m)
		last = deps(b.add(s, t))
	}
	if m.node != nil || m.joinStep != "" {
		s, t := target(Step{Action: ActionRemoveNode, Reason: "forget the node once it is Down", DependsOn: last, Batch: batch, Removal: m.inst == nil}, m)
		last = deps(b.add(s, t))
	}
	return lastOf(last)
}

// managerLeave plans a manager's exit: [drain → await-drained when it runs
// tasks] → demote → remove-node → terminate. Demoting is the raft change; it
// is planned only when the remaining reachable managers keep quorum, and
// returns ok=false (planning nothing) otherwise.
func (b *builder) managerLeave(m *member, why string, batch int, after string) (string, bool) {
	isReach := m.isReachable()
	if m.isManager() && isReach && b.reach-1 < quorum(b.members-1) {
		b.note("Not removing manager %s (%s): %d of %d managers are reachable and removing it would leave %d of %d, below quorum.", m.id(), why, b.reach, b.members, b.reach-1, b.members-1)
		return after, false
	}
	last := b.drainFirst(m, why, batch, deps(after))
	if m.isManager() {
		reason := why + ": leave the raft membership (one change at a time)"
		if m.isLeader(b.leader) {
			reason = why + ": the leader is demoted last; leadership moves to another manager and the rest of this plan is finished by the new leader"
		}
		s, t := target(Step{Action: ActionDemote, Reason: reason, DependsOn: last, Batch: batch}, m)
		last = deps(b.add(s, t))
		b.members--
		if isReach {
			b.reach--
		}
	}
	if m.node != nil || m.joinStep != "" {
		s, t := target(Step{Action: ActionRemoveNode, Reason: "forget the node", DependsOn: last, Batch: batch, Removal: m.inst == nil}, m)
		last = deps(b.add(s, t))
	}
	if m.inst != nil {
		s, t := target(Step{Action: ActionTerminate, Reason: why, DependsOn: last, Batch: batch, Removal: true}, m)
		last = deps(b.add(s, t))
	}
	return lastOf(last), true
}

// labelDrift plans a label step when m's node lacks a wanted label, has
// another availability, or still carries a label swarmsync wrote earlier
// (listed in NodeLabelManaged) that the spec no longer has. Such a label is
// removed by the step (value ""); labels swarmsync never managed are left
// alone.
func (b *builder) labelDrift(m *member, after string) {
	if m.node == nil || m.node.State != providers.NodeReady || m.unlisted {
		return
	}
	w := b.want(m.group)
	labels, avail := w.labels, w.avail
	var diff []string
	for _, k := range w.keys {
		// An empty value is what Swarm removes: absent is the same.
		if m.node.Labels[k] != labels[k] {
			diff = append(diff, k+"="+labels[k])
		}
	}
	var drop []string
	if had := m.node.Labels[NodeLabelManaged]; had != w.managed {
		for _, k := range decodeManaged(had) {
			if _, ok := m.node.Labels[k]; ok && !w.spec[k] && !strings.HasPrefix(k, "swarmsync.") {
				diff = append(diff, "-"+k+" (no longer in the spec)")
				drop = append(drop, k)
			}
		}
		if w.managed == "" {
			diff = append(diff, "-"+NodeLabelManaged)
			drop = append(drop, NodeLabelManaged)
		}
	}
	if m.node.Availability != avail {
		diff = append(diff, "availability "+string(m.node.Availability)+" -> "+string(avail))
	}
	if len(diff) == 0 {
		return
	}
	out := maps.Clone(labels)
	for _, k := range drop {
		out[k] = "" // removes the key (providers.NodeChange)
	}
	s, t := target(Step{Action: ActionLabel, Labels: out, Availability: avail, DependsOn: deps(after),
		Reason: "labels or availability drifted from the spec: " + strings.Join(diff, ", ")}, m)
	b.add(s, t)
}

// managers plans the manager group as one chain of raft changes and returns
// the chain's last step. The leader's own replacement is left to leaderLast.
func (b *builder) managers() string {
	c := &b.c
	g := c.groups[schema.ManagersGroup]
	chain := ""
	// Unreachable members first: demoting one never costs quorum and makes
	// every later change safer.
	for _, m := range c.deadManagers {
		if !b.allow(m) || !b.takeHeal() {
			continue
		}
		why := "the manager is unreachable"
		if m.inst == nil {
			why = "the manager's instance is gone"
		}
		chain, _ = b.managerLeave(m, why, 0, chain)
	}
	for _, m := range c.strayManagers {
		if !b.allow(m) {
			m.frozen = true
			continue
		}
		if m.node.ID == b.leader {
			b.note("Node %s of group %s is the leader but should be a worker; it is left as it is. Move leadership away and run swarmsync again.", m.node.ID, m.group)
			m.frozen = true
			continue
		}
		if b.reach-1 < quorum(b.members-1) {
			b.note("Node %s of group %s is a manager but should be a worker; demoting it now would break quorum, so it is left as it is.", m.node.ID, m.group)
			m.frozen = true
			continue
		}
		s, t := target(Step{Action: ActionDemote, Reason: "a node of a worker group must not be a manager", DependsOn: deps(chain)}, m)
		chain = b.add(s, t)
		m.joinStep = chain // later steps on it wait for the demotion
		b.members--
		b.reach--
	}
	for _, m := range g.misplaced {
		if b.allow(m) && b.takeHeal() {
			chain, _ = b.managerLeave(m, "the manager was demoted but not removed (an interrupted removal)", 0, chain)
		}
	}
	for _, m := range g.stale {
		if b.takeHeal() {
			s, t := target(Step{Action: ActionTerminate, Removal: true, DependsOn: deps(chain),
				Reason: fmt.Sprintf("its node never joined within update.joinTimeout (%s); it is replaced", b.d.Update.JoinTimeout.Duration)}, m)
			chain = b.add(s, t)
		}
	}
	for _, m := range g.orphans {
		if b.takeHeal() {
			s, t := target(Step{Action: ActionRemoveNode, Removal: true, DependsOn: deps(chain), Reason: orphanReason(m)}, m)
			chain = b.add(s, t)
		}
	}
	for _, m := range g.pending {
		chain = b.awaitPending(m, chain)
	}
	b.waitingNotes(g)
	want := b.d.Managers.Count
	kept := slices.Clone(g.kept)
	// Scale down: never the leader (at least one manager stays).
	if excess := len(kept) - want; excess > 0 {
		cands := slices.DeleteFunc(slices.Clone(kept), func(m *member) bool { return m.frozen || (m.node != nil && m.node.ID == b.leader) })
		for _, m := range pickVictims(cands, excess, kept) {
			if !b.allow(m) || !b.takeHeal() {
				continue
			}
			var ok bool
			chain, ok = b.managerLeave(m, fmt.Sprintf("managers.count is %d", want), 0, chain)
			if ok {
				kept = slices.DeleteFunc(kept, func(x *member) bool { return x == m })
			}
		}
	}
	for i := len(kept); i < want; i++ {
		chain = b.launch(schema.ManagersGroup, 1, false, fmt.Sprintf("managers.count is %d, %d are in place (one raft change at a time)", want, i), 0, chain)
	}
	// Replacement: surge first (the new manager joins before the old one
	// leaves), the leader last.
	var outdated []*member
	for _, m := range kept {
		if m.outdated && (m.node == nil || m.node.ID != b.leader) {
			outdated = append(outdated, m)
		}
	}
	replaced := map[*member]bool{}
	for _, m := range pickVictims(outdated, len(outdated), kept) {
		if !b.allow(m) || !b.takeReplace() {
			continue
		}
		b.batch[schema.ManagersGroup]++
		bt := b.batch[schema.ManagersGroup]
		chain = b.launch(schema.ManagersGroup, 1, false, "surge: replaces out-of-date manager "+m.id(), bt, chain)
		chain, _ = b.managerLeave(m, "its swarmsync:config is out of date", bt, chain)
		replaced[m] = true
	}
	for _, m := range kept {
		if !replaced[m] && m.joinStep == "" && !(m.outdated && m.isLeader(b.leader)) {
			b.labelDrift(m, "")
		}
	}
	return chain
}

// workers plans one worker group (or a group no longer in the spec).
func (b *builder) workers(name string) {
	g := b.c.groups[name]
	want, declared := b.desiredCount(name)
	for _, m := range g.orphans {
		if b.takeHeal() {
			s, t := target(Step{Action: ActionRemoveNode, Removal: true, Reason: orphanReason(m)}, m)
			b.add(s, t)
		}
	}
	b.waitingNotes(g)
	if !declared {
		if len(g.kept)+len(g.stale) == 0 {
			return
		}
		if !b.d.Safety.Prune {
			b.note("Group %s is no longer in the spec; its %d owned instance(s) are kept. Set safety.prune: true to remove them.", name, len(g.kept)+len(g.stale))
			return
		}
		for _, m := range g.stale {
			if b.takeHeal() {
				s, t := target(Step{Action: ActionTerminate, Removal: true, Reason: "the group is no longer in the spec (safety.prune)"}, m)
				b.add(s, t)
			}
		}
		for _, m := range g.kept {
			if m.frozen || !b.allow(m) || !b.takeHeal() {
				continue
			}
			after := m.joinStep
			if m.node == nil {
				after = b.awaitPendingJoinOnly(m)
			}
			b.workerLeave(m, "the group is no longer in the spec (safety.prune)", 0, after)
		}
		return
	}
	for _, m := range g.stale {
		if b.takeHeal() {
			s, t := target(Step{Action: ActionTerminate, Removal: true,
				Reason: fmt.Sprintf("its node never joined within update.joinTimeout (%s); it is replaced", b.d.Update.JoinTimeout.Duration)}, m)
			b.add(s, t)
		}
	}
	for _, m := range g.pending {
		b.awaitPending(m, "")
	}
	kept := slices.Clone(g.kept)
	if excess := len(kept) - want; excess > 0 {
		movable := slices.DeleteFunc(slices.Clone(kept), func(m *member) bool { return m.frozen })
		for _, m := range pickVictims(movable, excess, kept) {
			if !b.allow(m) || !b.takeHeal() {
				continue
			}
			b.workerLeave(m, fmt.Sprintf("workers.%s.count is %d", strings.TrimPrefix(name, "workers/"), want), 0, m.joinStep)
			kept = slices.DeleteFunc(kept, func(x *member) bool { return x == m })
		}
	}
	// A worker whose instance the cloud does not list yet and whose group
	// is unknown may be the one that tops this group up: launch nothing.
	hold := len(b.c.unattributed) > 0
	fill := ""
	if n := want - len(kept); n > 0 && hold {
		b.note("Group %s has %d of %d workers in place; the launch waits until the cloud lists the instance of every node that has joined.", name, len(kept), want)
	} else if n > 0 {
		fill = b.launch(name, n, false, fmt.Sprintf("workers.%s.count is %d, %d are in place", strings.TrimPrefix(name, "workers/"), want, len(kept)), 0)
	}
	// Workers Down for good leave like any worker (a Down node is not
	// drained: it runs nothing), after the launch that makes up the count,
	// so the group is never shorter than it is now.
	why := fmt.Sprintf("the node is Down although its instance runs, launched more than update.joinTimeout (%s) ago; it is removed", b.d.Update.JoinTimeout.Duration)
	if fill != "" {
		why = strings.TrimSuffix(why, "removed") + "replaced"
	}
	for _, m := range g.broken {
		if b.allow(m) && b.takeHeal() {
			b.workerLeave(m, why, 0, fill)
		}
	}
	// Rolling replacement in batches of update.parallelism; each batch
	// launches up to update.maxSurge replacements before its victims leave,
	// and the rest after.
	var outdated []*member
	for _, m := range kept {
		if m.outdated && !m.frozen && !hold {
			outdated = append(outdated, m)
		}
	}
	victims := pickVictims(outdated, len(outdated), kept)
	var allowed []*member
	for _, m := range victims {
		if b.allow(m) && b.takeReplace() {
			allowed = append(allowed, m)
		}
	}
	par := max(1, b.d.Update.Parallelism)
	surge := max(0, b.d.Update.MaxSurge)
	replaced := map[*member]bool{}
	var prev []string // the previous batch's ends: the next batch waits for them
	for start := 0; start < len(allowed); start += par {
		batch := allowed[start:min(start+par, len(allowed))]
		b.batch[name]++
		bt := b.batch[name]
		k := min(len(batch), surge)
		after := prev
		if k > 0 {
			after = deps(b.launch(name, k, false, fmt.Sprintf("surge: %d replacement(s) for batch %d of out-of-date workers", k, bt), bt, prev...))
		}
		var ends []string
		for _, m := range batch {
			ends = append(ends, b.workerLeave(m, "its swarmsync:config is out of date", bt, append(slices.Clone(after), m.joinStep)...))
			replaced[m] = true
		}
		prev = ends
		if rest := len(batch) - k; rest > 0 {
			prev = deps(b.launch(name, rest, false, fmt.Sprintf("%d replacement(s) for batch %d of out-of-date workers", rest, bt), bt, ends...))
		}
	}
	for _, m := range kept {
		if !replaced[m] && m.node != nil && !m.frozen {
			b.labelDrift(m, m.joinStep)
		}
	}
}

// waitingNotes explains the nodes of g that wait to be Down before they are
// removed.
func (b *builder) waitingNotes(g *groupState) {
	for _, m := range g.waiting {
		st := string(m.node.State)
		if st != "" {
			st = strings.ToUpper(st[:1]) + st[1:]
		}
		b.note("Node %s (group %s) is %s but its instance is gone; it is removed once it is Down.", m.node.ID, g.name, st)
	}
}

// awaitPendingJoinOnly plans the await-join of a pending instance that is
// about to leave (no label needed) and returns its id.
func (b *builder) awaitPendingJoinOnly(m *member) string {
	join := b.add(Step{Action: ActionAwaitJoin, Group: m.group, Instance: m.inst.ID,
		Reason: "its node is joining; it leaves once joined"}, m.inst.ID)
	b.joins = append(b.joins, join)
	b.workerJoined = true
	m.joinStep = join
	return join
}

// leaderLast replaces the leader when it is out of date, after every other
// step: a surge manager joins, the join tokens are rotated, and only then
// is the leader demoted, removed and terminated.
func (b *builder) leaderLast(chain string) {
	g := b.c.groups[schema.ManagersGroup]
	var lm *member
	for _, m := range g.kept {
		if m.node != nil && m.node.ID == b.c.leader && m.outdated {
			lm = m
		}
	}
	if lm == nil || !b.allow(lm) || !b.takeReplace() {
		if lm != nil {
			b.labelDrift(lm, "")
		}
		b.rotate(nil)
		return
	}
	b.batch[schema.ManagersGroup]++
	bt := b.batch[schema.ManagersGroup]
	last := b.launch(schema.ManagersGroup, 1, false, "surge: replaces the out-of-date leader "+lm.id()+" (the leader goes last)", bt, b.leaves()...)
	rot := b.rotate([]string{last})
	b.managerLeave(lm, "its swarmsync:config is out of date", bt, lastOf([]string{last, rot}))
}

// leaves returns the steps nothing depends on yet, in plan order.
func (b *builder) leaves() []string {
	var out []string
	for _, s := range b.steps {
		if !b.child[s.ID] {
			out = append(out, s.ID)
		}
	}
	return out
}

// rotate plans the join-token rotation (after joins, on schedule) and
// returns its id ("" when none); see rotateTokens in rotation.go.
func (b *builder) rotate(extra []string) string { return b.rotateTokens(extra) }

func (b *builder) foreignNotes() {
	managers, lost := 0, 0
	for _, n := range b.c.foreign {
		if n.Role == providers.RoleManager {
			managers++
			if !reachable(n) {
				lost++
			}
		}
	}
	if len(b.c.foreign) > 0 {
		b.note("%d node(s) (%d manager(s)) are not owned by swarmsync (no owned instance, no swarmsync labels); they are never changed but count in the raft membership.", len(b.c.foreign), managers)
	}
	if lost > 0 {
		b.note("%d unreachable manager(s) not owned by swarmsync lower the quorum margin; if they are gone for good, remove them by hand (docker node demote, then docker node rm).", lost)
	}
	if len(b.o.Unowned) > 0 {
		b.note("%d instance(s) without the swarmsync:cluster tag were seen; they are never touched.", len(b.o.Unowned))
	}
}
