package plan

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// The simulator is an independent model of a cluster (instances, nodes,
// raft membership, leadership) on which plans are executed step by step to
// check the safety rules as invariants.

type simInst struct {
	id, group, config, zone, ip string
	live, unowned               bool
	launched                    time.Time
}

type simNode struct {
	id, inst     string
	role         providers.Role
	ready, reach bool
	avail        providers.Availability
	labels       map[string]string
	leader       bool
	// staleLeader is a leader flag a Down manager still carries from
	// before it went Down: observed, but it does not lead.
	staleLeader bool
	// downSince is when the node went Down (zero while it is Ready).
	downSince   time.Time
	drained     bool
	noEngineTag bool
	wasManager  bool // demoted in this plan
	// created is when the node joined, on the manager's clock (zero:
	// unknown). viaToken marks a node that joined with a join token
	// (every node but the one that created the swarm); epoch is the
	// number of rotations done before it joined: its token is still valid
	// while epoch equals the model's rotations.
	created  time.Time
	viaToken bool
	epoch    int
	// lingering counts the pass starts a node stays Ready for although a
	// killed pass terminated its instance (its heartbeat has not lapsed
	// yet): it is seen Ready by the next pass, Down by the one after.
	lingering int
	// oldKey is a label swarmsync wrote earlier (listed in
	// NodeLabelManaged) that the spec no longer has; keepKey is a label
	// swarmsync never managed. Both "" when none.
	oldKey, keepKey string
	// ghost marks a node entry no engine ever described (a join that never
	// completed): observed without hostname, labels or address, state
	// unknown, or Down since downSince when that is set. inRaft marks a
	// manager one that joined the raft membership (unreachable).
	ghost, inRaft bool
}

type model struct {
	spec     schema.Cluster
	now      time.Time
	swarm    bool
	insts    map[string]*simInst
	nodes    map[string]*simNode
	seq      int
	launched map[string][]string // launch step id → instance ids
	// inFlight is a manager launch whose await-join has not run yet: a raft
	// change in progress.
	inFlight string
	removed  map[string]bool // member keys removed in the current pass
	// windows are the spec's disruption windows; outside them (closed)
	// no step may take capacity or a raft vote away.
	windows []simWindow
	closed  bool
	// hideInst and hideNode are the cloud's and the Swarm's lag in the
	// current pass: instances (by id) missing from the cloud's listing
	// while their nodes are in the Swarm, and nodes (by id) not seen yet
	// while their instances are listed. The model itself knows the truth.
	hideInst, hideNode map[string]bool
	// startAll counts, per group at the start of a pass, the members in
	// service (see inService): the bound for launches. outAtStart are the
	// instances out of service at the start: none comes back in the pass
	// (a dead manager demoted on its way out is not a worker in service).
	startAll   map[string]int
	outAtStart map[string]bool
	// startLive counts, per group at the start of a pass, its live owned
	// instances (in service or not).
	startLive map[string]int
	// rotated is the join-token rotation recorded on the Swarm (the swarm
	// label); zero when none.
	rotated time.Time
	// created is when the swarm was created; zero when unknown.
	created time.Time
	// leaving are the instances the plan being run terminates.
	leaving map[string]bool
	// skew is how far the manager's clock (which stamps nodes' creation)
	// is ahead of swarmsync's (m.now), and ticks how many steps ran: the
	// manager's clock moves on by a second per step while m.now stays.
	skew  time.Duration
	ticks int
	// rotations counts the rotations of both join tokens (see
	// simNode.epoch). truthKnown is false when nothing shows since when the
	// tokens are valid (no record, no swarm creation time): the planner
	// cannot tell whether a node joined after a rotation.
	rotations  int
	truthKnown bool
	// inFlightInst is the instance of the manager launch in flight, so a
	// later pass's await-join of it (after a kill) ends the raft change.
	inFlightInst string
	// terminatedReady are the instances the pass being run terminated
	// while their nodes were Ready.
	terminatedReady []string
	// failJoin are the groups whose new machines never join (a bad image,
	// a broken network): their await-join steps fail. failEvery makes one
	// step in failEvery of the kinds that can fail (launch, await-join,
	// drain, await-drained: tasks that cannot move, terminate) fail at
	// random (zero: none), drawn from failRand. failed counts the steps
	// that failed in the pass being run, waited how long apply waited for
	// them (the pass's end moves the clock on by it).
	// noLeader hides every leader flag from the observation (an election
	// in progress).
	noLeader  bool
	failJoin  map[string]bool
	failEvery int
	failRand  *rand.Rand
	failed    int
	waited    time.Duration
	// ghostsRemoved counts the ghost entries removed (all passes).
	ghostsRemoved int
}

// fails decides whether step s fails when run (see model.failJoin).
func (m *model) fails(s Step) bool {
	if s.Action == ActionAwaitJoin && m.failJoin[s.Group] {
		return true
	}
	switch s.Action {
	case ActionLaunch, ActionAwaitJoin, ActionDrain, ActionAwaitDrained, ActionTerminate:
		return m.failEvery > 0 && m.failRand.IntN(m.failEvery) == 0
	}
	return false
}

// managerNow is the manager's clock.
func (m *model) managerNow() time.Time {
	return m.now.Add(m.skew + time.Duration(m.ticks)*time.Second)
}

// simWindow is a disruption window the test can evaluate on its own: daily
// or weekly at hour:minute UTC, or every period since the Unix epoch.
type simWindow struct {
	every        time.Duration
	hour, minute int
	dow          int // -1: every day
	dur          time.Duration
}

func (w simWindow) cron() string {
	switch {
	case w.every > 0:
		return "@every " + w.every.String()
	case w.dow < 0:
		return fmt.Sprintf("%d %d * * *", w.minute, w.hour)
	}
	return fmt.Sprintf("%d %d * * %d", w.minute, w.hour, w.dow)
}

// openAt looks at the activations of the last days directly.
func (w simWindow) openAt(t time.Time) bool {
	t = t.UTC()
	if w.every > 0 {
		p := int64(w.every / time.Second)
		start := time.Unix(t.Unix()/p*p, 0)
		return t.Before(start.Add(w.dur))
	}
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	for k := 0; k <= 8; k++ {
		a := day.AddDate(0, 0, -k).Add(time.Duration(w.hour)*time.Hour + time.Duration(w.minute)*time.Minute)
		if w.dow >= 0 && int(a.Weekday()) != w.dow {
			continue
		}
		if !a.After(t) && t.Before(a.Add(w.dur)) {
			return true
		}
	}
	return false
}

func genWindows(r *rand.Rand) []simWindow {
	if r.IntN(3) > 0 {
		return nil
	}
	var ws []simWindow
	for range 1 + r.IntN(2) {
		w := simWindow{hour: r.IntN(24), minute: r.IntN(4) * 15, dow: -1, dur: time.Duration(30+r.IntN(8)*30) * time.Minute}
		switch r.IntN(3) {
		case 0:
			w.dow = r.IntN(7)
		case 1:
			w.every = []time.Duration{time.Hour, 5 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}[r.IntN(4)]
		}
		ws = append(ws, w)
	}
	return ws
}

func (m *model) windowOpen(t time.Time) bool {
	if len(m.windows) == 0 {
		return true
	}
	for _, w := range m.windows {
		if w.openAt(t) {
			return true
		}
	}
	return false
}

// disruptive reports whether s, applied to the model now, takes capacity
// or a raft vote away: a drain, the demotion of a reachable manager, or
// the removal or termination of a Ready node.
func (m *model) disruptive(s Step) bool {
	switch s.Action {
	case ActionDrain, ActionAwaitDrained:
		return true
	case ActionDemote, ActionRemoveNode:
		ns, err := m.targets(s)
		if err != nil {
			return false // reported by apply
		}
		if in := m.insts[ns[0].inst]; s.Action == ActionRemoveNode && in != nil && !in.live {
			return false // its machine is gone: removed once Down
		}
		return ns[0].ready
	case ActionTerminate:
		n := m.nodeOfInst(s.Instance)
		return n != nil && n.ready
	}
	return false
}

func newModel(spec schema.Cluster, now time.Time) *model {
	return &model{spec: spec, now: now, insts: map[string]*simInst{}, nodes: map[string]*simNode{}}
}

func (m *model) nextIP() string {
	m.seq++
	return fmt.Sprintf("10.%d.%d.%d", m.seq/65536%256, m.seq/256%256, m.seq%256)
}

func (m *model) addInst(group, config, zone string, launched time.Time, unowned bool) *simInst {
	m.seq++
	in := &simInst{id: fmt.Sprintf("i-%05d", m.seq), group: group, config: config, zone: zone, ip: m.nextIP(), live: true, unowned: unowned, launched: launched}
	m.insts[in.id] = in
	return in
}

func (m *model) addNode(inst string, role providers.Role) *simNode {
	m.seq++
	n := &simNode{id: fmt.Sprintf("n-%05d", m.seq), inst: inst, role: role, ready: true, reach: role == providers.RoleManager,
		avail: providers.AvailabilityActive, labels: map[string]string{}}
	m.nodes[n.id] = n
	return n
}

func (m *model) raft() (members, reach int) {
	for _, n := range m.nodes {
		if n.role == providers.RoleManager {
			members++
			if n.reach && n.ready {
				reach++
			}
		}
	}
	return
}

// observe turns the model into an observation, as the providers would.
func (m *model) observe() Observed {
	o := Observed{Cluster: m.spec.Name, TakenAt: m.now, Swarm: providers.SwarmState{Active: m.swarm}}
	if m.swarm {
		o.Swarm.CreatedAt = m.created
	}
	if !m.rotated.IsZero() {
		o.Swarm.Labels = map[string]string{providers.SwarmLabelJoinTokensRotated: providers.FormatRotated(m.rotated)}
	}
	for _, in := range m.insts {
		if m.hideInst[in.id] {
			continue
		}
		x := providers.Instance{ID: in.id, Cluster: m.spec.Name, Group: in.group, Config: in.config, PrivateIP: in.ip, Zone: in.zone, LaunchedAt: in.launched, State: providers.StateRunning}
		if !in.live {
			x.State = providers.StateTerminated
		}
		if in.unowned {
			x.Cluster = "other"
			o.Unowned = append(o.Unowned, x)
		} else {
			o.Instances = append(o.Instances, x)
		}
	}
	for _, n := range m.nodes {
		if m.hideNode[n.id] {
			continue
		}
		if n.ghost {
			x := providers.Node{ID: n.id, Role: n.role, Availability: n.avail, State: providers.NodeUnknown, CreatedAt: n.created}
			if !n.downSince.IsZero() {
				x.State, x.DownSince = providers.NodeDown, n.downSince
			}
			if n.inRaft {
				x.Reachability = providers.Unreachable
			}
			o.Swarm.Nodes = append(o.Swarm.Nodes, x)
			continue
		}
		x := providers.Node{ID: n.id, Hostname: "h-" + n.id, Role: n.role, Availability: n.avail, State: providers.NodeDown, Labels: maps.Clone(n.labels), CreatedAt: n.created}
		if n.ready {
			x.State = providers.NodeReady
		} else {
			x.DownSince = n.downSince
		}
		if in := m.insts[n.inst]; in != nil {
			x.Addr = in.ip
		} else {
			x.Addr = "192.168.0." + n.id[len(n.id)-3:] // a gone machine's address, reused by nobody
		}
		if !n.noEngineTag && n.inst != "" {
			x.EngineLabels = map[string]string{providers.EngineLabelInstance: n.inst}
		}
		if n.role == providers.RoleManager {
			x.ManagerAddr = x.Addr + ":2377"
			x.Reachability = providers.Unreachable
			if n.reach && n.ready {
				x.Reachability = providers.Reachable
			}
			x.Leader = (n.leader || n.staleLeader) && !m.noLeader
		}
		o.Swarm.Nodes = append(o.Swarm.Nodes, x)
	}
	return o.Canonical()
}

func (m *model) memberKey(n *simNode) string {
	if n.inst != "" {
		return n.inst
	}
	return n.id
}

func (m *model) nodeOfInst(id string) *simNode {
	for _, n := range m.nodes {
		if n.inst == id {
			return n
		}
	}
	return nil
}

func (m *model) groupOf(n *simNode) string {
	if in := m.insts[n.inst]; in != nil {
		return in.group
	}
	return n.labels[providers.NodeLabelGroup]
}

// targets resolves a step's target nodes.
func (m *model) targets(s Step) ([]*simNode, error) {
	switch {
	case s.Node != "":
		n := m.nodes[s.Node]
		if n == nil {
			return nil, fmt.Errorf("node %s does not exist", s.Node)
		}
		return []*simNode{n}, nil
	case s.Instance != "":
		n := m.nodeOfInst(s.Instance)
		if n == nil {
			return nil, fmt.Errorf("instance %s has no node", s.Instance)
		}
		return []*simNode{n}, nil
	case s.LaunchStep != "":
		var out []*simNode
		for _, id := range m.launched[s.LaunchStep] {
			n := m.nodeOfInst(id)
			if n == nil {
				return nil, fmt.Errorf("instance %s of %s has no node", id, s.LaunchStep)
			}
			out = append(out, n)
		}
		return out, nil
	}
	return nil, fmt.Errorf("step has no target")
}

func (m *model) join(inst *simInst) error {
	if inst.unowned || !inst.live {
		return fmt.Errorf("joining instance %s that is unowned or gone", inst.id)
	}
	if m.nodeOfInst(inst.id) != nil {
		return fmt.Errorf("instance %s joined twice", inst.id)
	}
	role := providers.RoleWorker
	if inst.group == schema.ManagersGroup {
		role = providers.RoleManager
	}
	if !m.swarm {
		if role != providers.RoleManager {
			return fmt.Errorf("worker %s joins before the Swarm exists", inst.id)
		}
		n := m.addNode(inst.id, role)
		n.leader = true
		m.swarm, m.created = true, m.managerNow()
		n.created = m.created.Add(time.Millisecond) // the same update as the swarm
		m.truthKnown = true
		return nil
	}
	n := m.addNode(inst.id, role)
	n.created, n.viaToken, n.epoch = m.managerNow(), true, m.rotations
	return nil
}

// apply executes one step on the model and checks the step-local rules.
func (m *model) apply(s Step, done map[string]bool) error {
	for _, d := range s.DependsOn {
		if !done[d] {
			return fmt.Errorf("depends on %s, which is not earlier in the plan", d)
		}
	}
	if in := m.insts[s.Instance]; s.Instance != "" && in != nil && in.unowned {
		return fmt.Errorf("targets unowned instance %s", s.Instance)
	}
	if n := m.nodes[s.Node]; n != nil {
		if in := m.insts[n.inst]; in != nil && in.unowned {
			return fmt.Errorf("targets node %s of unowned instance", n.id)
		}
	}
	switch s.Action {
	case ActionDrain, ActionAwaitDrained, ActionDemote, ActionRemoveNode, ActionTerminate, ActionLabel:
		// A node whose instance the cloud does not list yet is a member
		// like any other: nothing may act on it as if it were gone.
		if ns, err := m.targets(s); err == nil {
			for _, n := range ns {
				if m.hideInst[n.inst] && n.ready {
					return fmt.Errorf("%s of Ready node %s, whose instance %s is only missing from the cloud's listing", s.Action, n.id, n.inst)
				}
			}
		}
	}
	switch s.Action {
	case ActionLaunch:
		if s.Count < 1 {
			return fmt.Errorf("launch of %d", s.Count)
		}
		if want := ConfigDigest(m.spec, s.Group); s.Config != want || want == "" {
			return fmt.Errorf("launch with config %q, spec wants %q", s.Config, want)
		}
		if s.Group == schema.ManagersGroup {
			if s.Count != 1 {
				return fmt.Errorf("launches %d managers at once", s.Count)
			}
			if m.inFlight != "" {
				return fmt.Errorf("launches a manager while %s has not joined (two raft changes at once)", m.inFlight)
			}
			if s.Init == m.swarm {
				return fmt.Errorf("init=%v but swarm exists=%v", s.Init, m.swarm)
			}
			m.inFlight = s.ID
			m.inFlightInst = ""
		}
		if m.launched == nil {
			m.launched = map[string][]string{}
		}
		for i := 0; i < s.Count; i++ {
			in := m.addInst(s.Group, s.Config, []string{"a", "b", "c"}[i%3], m.now, false)
			m.launched[s.ID] = append(m.launched[s.ID], in.id)
			if m.inFlight == s.ID {
				m.inFlightInst = in.id
			}
		}
		if err := m.checkLaunchBound(s.Group); err != nil {
			return err
		}
	case ActionAwaitJoin:
		var ids []string
		switch {
		case s.LaunchStep != "":
			ids = m.launched[s.LaunchStep]
			if m.inFlight == s.LaunchStep {
				m.inFlight = ""
			}
		case s.Instance != "":
			ids = []string{s.Instance}
			if m.inFlightInst == s.Instance {
				m.inFlight, m.inFlightInst = "", ""
			}
		}
		if len(ids) == 0 {
			return fmt.Errorf("await-join of nothing")
		}
		for _, id := range ids {
			in := m.insts[id]
			if in == nil {
				return fmt.Errorf("await-join of unknown instance %s", id)
			}
			if n := m.nodeOfInst(id); n != nil && m.hideNode[n.id] {
				continue // joined already; the observation did not show it yet
			}
			if err := m.join(in); err != nil {
				return err
			}
		}
	case ActionLabel, ActionDrain, ActionAwaitDrained:
		ns, err := m.targets(s)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if !n.ready {
				return fmt.Errorf("%s on node %s that is Down", s.Action, n.id)
			}
			switch s.Action {
			case ActionLabel:
				for k, v := range s.Labels {
					if v == "" {
						delete(n.labels, k) // as Swarm does
					} else {
						n.labels[k] = v
					}
				}
				if s.Availability == "" {
					return fmt.Errorf("label without availability")
				}
				n.avail = s.Availability
				n.drained = n.avail == providers.AvailabilityDrain
			case ActionDrain:
				n.avail = providers.AvailabilityDrain
				n.drained = false
			case ActionAwaitDrained:
				if n.avail != providers.AvailabilityDrain {
					return fmt.Errorf("await-drained on node %s that is not draining", n.id)
				}
				n.drained = true
			}
		}
	case ActionDemote:
		ns, err := m.targets(s)
		if err != nil {
			return err
		}
		n := ns[0]
		if n.role != providers.RoleManager {
			return fmt.Errorf("demote of non-manager %s", n.id)
		}
		n.role = providers.RoleWorker
		n.wasManager = true
		if n.leader {
			n.leader = false
			var next []string
			for _, x := range m.nodes {
				if x.role == providers.RoleManager && x.reach && x.ready {
					next = append(next, x.id)
				}
			}
			if len(next) == 0 {
				return fmt.Errorf("demoted the leader with no reachable manager left")
			}
			slices.Sort(next)
			m.nodes[next[0]].leader = true
		}
		n.reach = false
	case ActionPromote:
		return fmt.Errorf("promote is not expected")
	case ActionRemoveNode:
		ns, err := m.targets(s)
		if err != nil {
			return err
		}
		n := ns[0]
		if s.Ghost != n.ghost {
			return fmt.Errorf("remove-node of node %s says ghost=%v, but the node is a ghost entry: %v", n.id, s.Ghost, n.ghost)
		}
		if n.ghost {
			// A ghost entry goes without drain (it never ran a task), as
			// a removal; never while its join may be in progress.
			if jt := m.spec.Update.JoinTimeout.Duration; n.created.Add(jt).After(m.now) {
				return fmt.Errorf("removes ghost entry %s created at %s, less than update.joinTimeout (%s) before %s: its join may be in progress", n.id, n.created.Format(time.RFC3339), jt, m.now.Format(time.RFC3339))
			}
			if !s.Removal {
				return fmt.Errorf("the removal of ghost entry %s is not counted as one", n.id)
			}
			m.ghostsRemoved++
		}
		if in := m.insts[n.inst]; in != nil && !in.live && n.ready {
			// Its machine is gone: apply waits until the Swarm sees the
			// node Down.
			n.ready, n.reach, n.lingering = false, false, 0
		}
		if n.role == providers.RoleManager {
			return fmt.Errorf("removes manager %s without demoting it", n.id)
		}
		if n.ready && !(n.avail == providers.AvailabilityDrain && n.drained) {
			return fmt.Errorf("removes Ready node %s that was not drained", n.id)
		}
		// A worker leaves as drain → terminate → remove-node (once Down); a
		// demoted manager may be removed first (DESIGN safety rule 1).
		if g := m.groupOf(n); g != schema.ManagersGroup && n.ready && !n.wasManager {
			if in := m.insts[n.inst]; in != nil && in.live {
				return fmt.Errorf("removes worker node %s before its instance is terminated", n.id)
			}
		}
		m.removed[m.memberKey(n)] = true
		delete(m.nodes, n.id)
	case ActionTerminate:
		in := m.insts[s.Instance]
		if in == nil || !in.live {
			return fmt.Errorf("terminates unknown or gone instance %s", s.Instance)
		}
		if n := m.nodeOfInst(in.id); n != nil {
			if n.role == providers.RoleManager {
				return fmt.Errorf("terminates manager %s without demoting it", n.id)
			}
			if n.ready && !(n.avail == providers.AvailabilityDrain && n.drained) {
				return fmt.Errorf("terminates Ready node %s that was not drained", n.id)
			}
			if n.ready {
				m.terminatedReady = append(m.terminatedReady, in.id)
			}
			n.ready, n.reach, n.downSince = false, false, m.now
		}
		in.live = false
		m.removed[in.id] = true
		if in.id == m.inFlightInst {
			m.inFlight, m.inFlightInst = "", "" // a manager that never joined: no raft change
		}
	case ActionRotateJoinToken:
		if !s.RotateWorker && !s.RotateManager {
			return fmt.Errorf("rotates nothing")
		}
		// A node still joining holds the current token: the rotation
		// waits for every join that is not given up (past joinTimeout)
		// of an instance that stays in a group of the spec.
		for _, in := range m.insts {
			if _, declared := m.desired(in.group); !declared || !in.live || in.unowned || m.leaving[in.id] {
				continue
			}
			if m.nodeOfInst(in.id) == nil && m.now.Sub(in.launched) < m.spec.Update.JoinTimeout.Duration {
				return fmt.Errorf("rotates the join tokens while instance %s is still joining", in.id)
			}
		}
		if !s.RotateWorker || !s.RotateManager {
			return fmt.Errorf("rotates one token only (worker %v, manager %v)", s.RotateWorker, s.RotateManager)
		}
		if !s.RecordRotatedAt.IsZero() && !s.RecordRotatedAt.Equal(m.now.Truncate(time.Second)) {
			return fmt.Errorf("records %s, not the observation time %s", s.RecordRotatedAt, m.now)
		}
		// What the provider records: the latest of the step's time, the
		// nodes' creation (the manager's clock) and the record.
		at := s.RecordRotatedAt
		for _, n := range m.nodes {
			if n.created.After(at) {
				at = n.created
			}
		}
		if at.After(m.rotated) {
			m.rotated = at
		}
		m.rotations++
		m.truthKnown = true
	default:
		return fmt.Errorf("unknown action %q", s.Action)
	}
	return nil
}

// inService counts the live owned instances of group that are in service
// or about to be, from the model's truth (what the observation hides
// included): up-to-date ones and all. A member is in service unless the
// planner must replace it: an instance whose node never joined within
// joinTimeout, a manager that is not a reachable member, a managers-group
// node that is a worker, a worker Down; but a node held within
// update.downGrace (held) is in service.
func (m *model) inService(group string) (upToDate, all int) {
	jt := m.spec.Update.JoinTimeout.Duration
	digest := ConfigDigest(m.spec, group)
	for _, in := range m.insts {
		if !in.live || in.unowned || in.group != group || m.outAtStart[in.id] {
			continue
		}
		young := in.launched.Add(jt).After(m.now)
		n := m.nodeOfInst(in.id)
		var ok bool
		switch {
		case n == nil:
			ok = young
		case n.role == providers.RoleManager:
			ok = n.reach && n.ready || m.held(n)
		case group == schema.ManagersGroup:
			ok = false
		default:
			ok = n.ready || m.held(n)
		}
		if !ok && m.outAtStart != nil {
			m.outAtStart[in.id] = true
		}
		if ok {
			all++
			if in.config == digest {
				upToDate++
			}
		}
	}
	return upToDate, all
}

// held reports whether the planner must leave n alone for now
// (update.downGrace): an owned, live instance's node that is a manager not
// reachable, or a Down worker of a declared worker group, Down for less
// than the grace (a Ready unreachable manager has not been Down at all).
func (m *model) held(n *simNode) bool {
	grace := m.spec.Update.DownGrace.Duration
	in := m.insts[n.inst]
	if grace <= 0 || in == nil || !in.live || in.unowned {
		return false
	}
	switch {
	case n.role == providers.RoleManager:
		if n.reach && n.ready {
			return false
		}
	case !n.ready:
		if _, declared := m.desired(in.group); !declared || in.group == schema.ManagersGroup {
			return false
		}
	default:
		return false
	}
	return n.ready || m.now.Sub(n.downSince) < grace
}

// heldNodes returns the ids of the nodes held (see held), sorted.
func (m *model) heldNodes() []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(m.nodes)) {
		if m.held(m.nodes[id]) {
			out = append(out, id)
		}
	}
	return out
}

// downTimes says since when the nodes of a generated state are Down: up to
// twice update.downGrace ago (some within it, some past it); in one case
// of eight a Down manager still carries the leader flag it had.
func (m *model) downTimes(r *rand.Rand) {
	grace := m.spec.Update.DownGrace.Duration
	stale := r.IntN(8) == 0
	for _, id := range slices.Sorted(maps.Keys(m.nodes)) {
		n := m.nodes[id]
		if n.ready {
			continue
		}
		n.downSince = m.now.Add(-time.Duration(r.IntN(int(2*grace/time.Minute)+2)) * time.Minute)
		if stale && n.role == providers.RoleManager {
			n.staleLeader, stale = true, false
		}
	}
}

// flap lets time pass while nodes are held: each held node comes back (one
// in three) or stays Down; a Ready unreachable manager goes Down now. Then
// the clock moves on by update.downGrace: what is still Down has been Down
// for the grace.
func (m *model) flap(r *rand.Rand) (back int) {
	for _, id := range m.heldNodes() {
		n := m.nodes[id]
		switch {
		case r.IntN(3) == 0:
			n.ready, n.downSince, n.staleLeader = true, time.Time{}, false
			n.reach = n.role == providers.RoleManager
			back++
		case n.ready:
			n.ready, n.downSince = false, m.now
		}
	}
	m.now = m.now.Add(m.spec.Update.DownGrace.Duration)
	return back
}

// checkHeld checks that p leaves alone every node the model holds (see
// held): no drain, demotion, removal or terminate of it, but for a
// scale-down; and that a note names it.
func checkHeld(p *Plan, m *model) error {
	for _, id := range m.heldNodes() {
		n := m.nodes[id]
		if m.hideNode[id] || m.hideInst[n.inst] {
			continue // unlisted: frozen for another reason
		}
		on := func(s Step) bool { return s.Node == id || s.Instance == n.inst }
		scaleDown := slices.ContainsFunc(p.Steps, func(s Step) bool { return on(s) && strings.Contains(s.Reason, ".count is") })
		for _, s := range p.Steps {
			if !on(s) {
				continue
			}
			switch s.Action {
			case ActionDrain, ActionDemote, ActionRemoveNode, ActionTerminate:
				if !scaleDown {
					return fmt.Errorf("step %s acts on node %s, Down since %s (update.downGrace %s, now %s): %s", s.ID, id, n.downSince.Format(time.RFC3339), m.spec.Update.DownGrace.Duration, m.now.Format(time.RFC3339), s.Reason)
				}
			}
		}
		if !slices.ContainsFunc(p.Notes, func(x string) bool { return strings.HasPrefix(x, "Node "+id+" ") && strings.Contains(x, "left alone") }) {
			return fmt.Errorf("node %s is held (Down since %s, update.downGrace %s) but no note says so: %q", id, n.downSince.Format(time.RFC3339), m.spec.Update.DownGrace.Duration, p.Notes)
		}
	}
	return nil
}

// checkStopped checks the groups a plan stops launching: the instances it
// keeps are live instances of the group's current config that never
// joined, and no step launches in the group.
func checkStopped(p *Plan, m *model) error {
	for _, st := range p.LaunchStopped {
		if len(st.Instances) == 0 {
			return fmt.Errorf("group %s stops launching but keeps no instance", st.Group)
		}
		for _, id := range st.Instances {
			in := m.insts[id]
			if in == nil || !in.live || in.group != st.Group || in.config != ConfigDigest(m.spec, st.Group) || m.nodeOfInst(id) != nil || in.launched.Add(m.spec.Update.JoinTimeout.Duration).After(m.now) {
				return fmt.Errorf("group %s stops launching on instance %s, which is not a live instance of its current config that never joined", st.Group, id)
			}
		}
		for _, s := range p.Steps {
			if s.Action == ActionLaunch && s.Group == st.Group {
				return fmt.Errorf("group %s stops launching but the plan launches %s", st.Group, s.ID)
			}
		}
	}
	return nil
}

// checkLaunchBound checks, right after a launch of group, that the plan
// launches no more than the spec needs, counting what the observation hid:
// the up-to-date members in service never exceed the spec's count (or the
// members in service at the start of the pass, when there were more: their
// replacements are up to date), and all members in service never exceed
// that plus the surge (update.maxSurge for workers, one for managers).
func (m *model) checkLaunchBound(group string) error {
	want, ok := m.desired(group)
	if !ok {
		return fmt.Errorf("launch for group %s, which the spec does not declare", group)
	}
	surge := m.spec.Update.MaxSurge
	if group == schema.ManagersGroup {
		surge = 1
	}
	// Every live instance counts (never joined, Down): a launch leaves
	// no more than the count plus the surge (or than at the start of the
	// pass, while a scale-down runs beside it).
	live := 0
	for _, in := range m.insts {
		if in.live && !in.unowned && in.group == group {
			live++
		}
	}
	if bound := max(want, m.startLive[group]) + surge; live > bound {
		return fmt.Errorf("group %s has %d live instances after a launch, more than %d (count %d, %d live at the start of the pass, surge %d)", group, live, bound, want, m.startLive[group], surge)
	}
	up, all := m.inService(group)
	if bound := max(want, m.startAll[group]); up > bound {
		return fmt.Errorf("group %s has %d up-to-date members in service after a launch, more than %d (spec %d, %d in service at the start of the pass): a duplicate launch", group, up, bound, want, m.startAll[group])
	}
	if bound := max(want, m.startAll[group]) + surge; all > bound {
		return fmt.Errorf("group %s has %d members in service after a launch, more than %d (spec %d, %d at the start of the pass, surge %d)", group, all, bound, want, m.startAll[group], surge)
	}
	return nil
}

// desired returns the spec's count of group and whether it declares it.
func (m *model) desired(group string) (int, bool) {
	if group == schema.ManagersGroup {
		return m.spec.Managers.Count, true
	}
	g, ok := m.spec.Workers[strings.TrimPrefix(group, "workers/")]
	return g.Count, ok && strings.HasPrefix(group, "workers/")
}

// run executes a whole plan, checking the invariants after every step.
// With r it runs the steps in a random order that respects depends_on (any
// order an applier may choose must be safe); with nil, in plan order.
func (m *model) run(p *Plan, r *rand.Rand) error { return m.runPrefix(p, r, -1) }

// runPrefix is run, killed after its first k steps (k < 0: none): what a
// SIGKILLed apply leaves. A killed pass does not finish its raft change;
// the next pass finds it.
func (m *model) runPrefix(p *Plan, r *rand.Rand, k int) error {
	m.terminatedReady = nil
	m.removed = map[string]bool{}
	m.launched = map[string][]string{}
	m.startAll, m.outAtStart = map[string]int{}, map[string]bool{}
	for _, g := range append([]string{schema.ManagersGroup}, slices.Collect(maps.Keys(m.spec.Workers))...) {
		if g != schema.ManagersGroup {
			g = schema.WorkerGroupName(g)
		}
		_, m.startAll[g] = m.inService(g)
	}
	m.startLive = map[string]int{}
	for _, in := range m.insts {
		if in.live && !in.unowned {
			m.startLive[in.group]++
		}
	}
	defer func() { m.outAtStart = nil }()
	m.leaving = map[string]bool{}
	for _, s := range p.Steps {
		if s.Action == ActionTerminate {
			m.leaving[s.Instance] = true
		}
	}
	done := map[string]bool{}
	members0, reach0 := m.raft()
	if m.swarm && reach0 < quorum(members0) && len(p.Steps) > 0 {
		return fmt.Errorf("quorum is lost (%d/%d) but the plan has %d steps", reach0, members0, len(p.Steps))
	}
	n := len(p.Steps)
	pos := make(map[string]int, n)
	words := (n + 63) / 64
	anc := make([][]uint64, n) // transitive dependencies, as bitsets
	for i, s := range p.Steps {
		if _, dup := pos[s.ID]; dup {
			return fmt.Errorf("duplicate step id %s", s.ID)
		}
		anc[i] = make([]uint64, words)
		for _, d := range s.DependsOn {
			j, ok := pos[d]
			if !ok {
				return fmt.Errorf("step %s depends on %s, which is not earlier in the plan", s.ID, d)
			}
			anc[i][j/64] |= 1 << (j % 64)
			for w := range anc[j] {
				anc[i][w] |= anc[j][w]
			}
		}
		pos[s.ID] = i
	}
	isAnc := func(a, of int) bool { return anc[of][a/64]&(1<<(a%64)) != 0 }
	// Raft changes (a manager joining, a demotion) happen one at a time:
	// each depends on the one before it.
	lastRaft := -1
	for i, s := range p.Steps {
		if (s.Action == ActionAwaitJoin && s.Group == schema.ManagersGroup) || s.Action == ActionDemote {
			if lastRaft >= 0 && !isAnc(lastRaft, i) {
				return fmt.Errorf("raft change %s does not wait for %s", s.ID, p.Steps[lastRaft].ID)
			}
			lastRaft = i
		}
	}
	// The leader goes last: every step that is not part of its own
	// removal comes before its demotion.
	for i, s := range p.Steps {
		ln := m.nodes[s.Node]
		if s.Action != ActionDemote || ln == nil || !ln.leader {
			continue
		}
		for j, o := range p.Steps {
			if j == i || o.Node == ln.id || (ln.inst != "" && o.Instance == ln.inst) {
				continue
			}
			if !isAnc(j, i) {
				return fmt.Errorf("step %s is not done before the leader's demotion %s", o.ID, s.ID)
			}
		}
	}
	order := make([]int, 0, n)
	if r == nil {
		for i := range n {
			order = append(order, i)
		}
	} else {
		waiting := make([]int, n)
		children := make([][]int, n)
		var ready []int
		for i, s := range p.Steps {
			waiting[i] = len(s.DependsOn)
			for _, d := range s.DependsOn {
				children[pos[d]] = append(children[pos[d]], i)
			}
			if waiting[i] == 0 {
				ready = append(ready, i)
			}
		}
		for len(ready) > 0 {
			k := r.IntN(len(ready))
			i := ready[k]
			ready = append(ready[:k], ready[k+1:]...)
			order = append(order, i)
			for _, c := range children[i] {
				if waiting[c]--; waiting[c] == 0 {
					ready = append(ready, c)
				}
			}
		}
	}
	if k >= 0 && k < len(order) {
		order = order[:k]
	}
	m.failed, m.waited = 0, 0
	// A step that fails changes nothing. Then update.failureAction pause
	// stops the pass; continue skips the steps that depend on it and the
	// later batches (apply starts a batch once the earlier ones are done).
	pause := m.spec.Update.FailureAction != "continue"
	broken := map[string]bool{}
	failedBatch := 0
	for _, i := range order {
		s := p.Steps[i]
		if slices.ContainsFunc(s.DependsOn, func(d string) bool { return broken[d] }) || (failedBatch > 0 && s.Batch > failedBatch) {
			broken[s.ID] = true
			continue
		}
		m.ticks++
		if m.closed && m.disruptive(s) {
			return fmt.Errorf("step %d (%s) is disruptive but no disruption window is open at %s", i, s.ID, m.now.Format(time.RFC3339))
		}
		if m.fails(s) {
			m.failed++
			broken[s.ID] = true
			switch s.Action {
			case ActionAwaitJoin:
				if m.inFlight != "" && (m.inFlight == s.LaunchStep || (s.Instance != "" && m.inFlightInst == s.Instance)) {
					m.inFlight, m.inFlightInst = "", "" // it never joined: no raft change
				}
				m.waited = max(m.waited, m.spec.Update.JoinTimeout.Duration)
			case ActionAwaitDrained:
				m.waited = max(m.waited, m.spec.Update.DrainTimeout.Duration)
			}
			if s.Batch > 0 && (failedBatch == 0 || s.Batch < failedBatch) {
				failedBatch = s.Batch
			}
			if pause {
				break
			}
			continue
		}
		if err := m.apply(s, done); err != nil {
			return fmt.Errorf("step %d (%s): %w", i, s.ID, err)
		}
		done[s.ID] = true
		if members, reach := m.raft(); m.swarm && reach < quorum(members) {
			return fmt.Errorf("after step %s: %d of %d managers reachable, below quorum", s.ID, reach, members)
		}
		if len(m.removed) > m.spec.Safety.MaxRemovalsPerApply {
			return fmt.Errorf("after step %s: %d removals, more than safety.maxRemovalsPerApply %d", s.ID, len(m.removed), m.spec.Safety.MaxRemovalsPerApply)
		}
	}
	if m.inFlight != "" && k < 0 && m.failed == 0 {
		return fmt.Errorf("manager launch %s (instance %q) never awaited", m.inFlight, m.inFlightInst)
	}
	return nil
}

// kill is what happens around a killed apply: the instances of its
// launches boot and join on their own (or not yet), and the nodes of the
// instances it terminated stay Ready until their heartbeats lapse (one
// more observation).
func (m *model) kill(r *rand.Rand) {
	for _, step := range slices.Sorted(maps.Keys(m.launched)) {
		for _, id := range m.launched[step] {
			in := m.insts[id]
			// The first manager initialises the swarm on boot, nothing
			// waits for it: it always comes up.
			if in.live && m.nodeOfInst(id) == nil && !m.failJoin[in.group] && (r.IntN(2) == 0 || !m.swarm) {
				m.ticks++
				if err := m.join(in); err == nil && id == m.inFlightInst {
					m.inFlight, m.inFlightInst = "", ""
				}
			}
		}
	}
	for _, id := range m.terminatedReady {
		if n := m.nodeOfInst(id); n != nil && n.role == providers.RoleWorker {
			n.ready, n.lingering = true, 2
		}
	}
}

// lapse starts a pass: nodes that lingered through one observation are
// Down now.
func (m *model) lapse() {
	for _, n := range m.nodes {
		if n.lingering > 0 {
			if n.lingering--; n.lingering == 0 {
				n.ready, n.downSince = false, m.now
			}
		}
	}
}

// stamp gives the nodes of a generated state their creation times and the
// truth about their join tokens. The swarm was created at m.created (40
// days ago when the observation does not show it); in one state of two the
// node that created it is still there (created with the swarm, no token).
// The others joined since; in one state of three some joined after the
// watermark (the recorded rotation, else the swarm's creation): a pass
// that died between a join and its rotation left their tokens valid.
func (m *model) stamp(r *rand.Rand) {
	if !m.swarm {
		return
	}
	created := m.created
	if created.IsZero() {
		created = m.now.Add(-40 * 24 * time.Hour)
	}
	since := m.rotated
	if since.IsZero() {
		since = m.created
	}
	m.truthKnown = !since.IsZero()
	if since.IsZero() {
		since = created
	}
	ids := slices.Sorted(maps.Keys(m.nodes))
	initNode := ""
	if r.IntN(2) == 0 {
		for _, id := range ids {
			if n := m.nodes[id]; n.role == providers.RoleManager && n.inst != "" && m.insts[n.inst] != nil {
				initNode = id
				break
			}
		}
	}
	late := r.IntN(3) == 0
	between := func(a, b time.Time) time.Time {
		if !b.After(a) {
			return b
		}
		return a.Add(time.Duration(r.Int64N(int64(b.Sub(a)))) + time.Nanosecond)
	}
	first := created.Add(time.Minute)
	for _, id := range ids {
		n := m.nodes[id]
		if id == initNode {
			n.created = created.Add(time.Millisecond)
			continue
		}
		n.viaToken = true
		switch {
		case late && r.IntN(3) == 0:
			from := first
			if since.After(from) {
				from = since
			}
			n.created = between(from, m.now)
		case since.After(first):
			n.created = between(first, since)
		default:
			n.created = first
		}
		n.epoch = -1 // its token was rotated since
		if n.created.After(since) {
			n.epoch = m.rotations
		}
	}
}

// addGhosts adds, in one case of four with a swarm, node entries of joins
// that never completed (ghost entries): up to six workers, or twenty to
// forty in one such case of ten (what a run at scale leaves), and a
// manager in one of three (in the raft membership or not). Half are older
// than update.joinTimeout (exactly that old, at the least), half younger
// (a join in progress, dated on the manager's clock, which is never
// behind); half were marked Down after their creation (a leader change),
// the others are unknown. It returns how many it added.
func (m *model) addGhosts(r *rand.Rand) int {
	if !m.swarm || r.IntN(4) > 0 {
		return 0
	}
	jt := m.spec.Update.JoinTimeout.Duration
	workers := 1 + r.IntN(6)
	if r.IntN(10) == 0 {
		workers = 20 + r.IntN(21)
	}
	roles := slices.Repeat([]providers.Role{providers.RoleWorker}, workers)
	if r.IntN(3) == 0 {
		roles = append(roles, providers.RoleManager)
	}
	for i, role := range roles {
		n := &simNode{id: fmt.Sprintf("n-ghost-%02d", i), role: role, ghost: true, avail: providers.AvailabilityActive, labels: map[string]string{}}
		n.inRaft = role == providers.RoleManager && r.IntN(2) == 0
		if r.IntN(2) == 0 {
			age := jt
			if r.IntN(3) > 0 {
				age += time.Duration(r.Int64N(int64(72 * time.Hour)))
			}
			n.created = m.now.Add(-age)
		} else {
			n.created = m.managerNow().Add(-time.Duration(r.Int64N(int64(jt))))
		}
		if r.IntN(2) == 0 {
			n.downSince = n.created
			if span := m.now.Sub(n.created); span > 0 {
				n.downSince = n.created.Add(time.Duration(r.Int64N(int64(span))))
			}
		}
		m.nodes[n.id] = n
	}
	return len(roles)
}

// checkGhosts checks what p does with the ghost entries: nothing acts on a
// manager one or on one younger than update.joinTimeout; a note names each
// old manager one with the commands to remove it by hand, and one counts
// the young worker ones; every old worker one is removed, unless a note
// says the removal budget left removals for a later pass. It returns the
// old worker ones p leaves and the young ones.
func checkGhosts(p *Plan, m *model) (deferred, young int, err error) {
	jt := m.spec.Update.JoinTimeout.Duration
	joining := 0
	for _, id := range slices.Sorted(maps.Keys(m.nodes)) {
		n := m.nodes[id]
		if !n.ghost {
			continue
		}
		old := !n.created.Add(jt).After(m.now)
		touched := slices.IndexFunc(p.Steps, func(s Step) bool { return s.Node == id })
		switch {
		case touched >= 0 && (!old || n.role == providers.RoleManager):
			return 0, 0, fmt.Errorf("step %s acts on ghost entry %s (%s, created %s, now %s)", p.Steps[touched].ID, id, n.role, n.created.Format(time.RFC3339), m.now.Format(time.RFC3339))
		case !old:
			young++
			if n.role == providers.RoleWorker {
				joining++
			}
		case n.role == providers.RoleManager:
			if !slices.ContainsFunc(p.Notes, func(x string) bool {
				return strings.HasPrefix(x, "Node "+id+" is a manager entry") && strings.Contains(x, "`docker node demote "+id+"` and `docker node rm "+id+"`")
			}) {
				return 0, 0, fmt.Errorf("old manager ghost entry %s is not named in a note: %q", id, p.Notes)
			}
		case touched < 0:
			if !slices.ContainsFunc(p.Notes, func(x string) bool { return strings.Contains(x, "left for a later pass") }) {
				return 0, 0, fmt.Errorf("ghost entry %s (created %s, now %s) is not removed, and no note says the budget defers it: %v, notes %q", id, n.created.Format(time.RFC3339), m.now.Format(time.RFC3339), view(p), p.Notes)
			}
			deferred++
		}
	}
	if joining > 0 && !slices.ContainsFunc(p.Notes, func(x string) bool {
		return strings.HasPrefix(x, fmt.Sprintf("%d worker node entr", joining)) && strings.Contains(x, "a join in progress is left alone")
	}) {
		return 0, 0, fmt.Errorf("%d young worker ghost entries, but no note counts them: %q", joining, p.Notes)
	}
	return deferred, young, nil
}

// exposed returns the nodes that joined with a join token that is still
// valid (no rotation since their join), when the model knows it.
func (m *model) exposed() []string {
	var out []string
	for _, n := range m.nodes {
		if n.viaToken && n.epoch == m.rotations {
			out = append(out, n.id)
		}
	}
	slices.Sort(out)
	return out
}

// converged checks that the model matches the spec.
func (m *model) converged() error {
	want := map[string]int{schema.ManagersGroup: m.spec.Managers.Count}
	for name, g := range m.spec.Workers {
		want[schema.WorkerGroupName(name)] = g.Count
	}
	have := map[string]int{}
	for _, in := range m.insts {
		if !in.live || in.unowned {
			continue
		}
		if _, ok := want[in.group]; !ok {
			if m.spec.Safety.Prune {
				return fmt.Errorf("instance %s of removed group %s kept although prune is set", in.id, in.group)
			}
			continue
		}
		if in.config != ConfigDigest(m.spec, in.group) {
			return fmt.Errorf("instance %s of %s is out of date", in.id, in.group)
		}
		n := m.nodeOfInst(in.id)
		if n == nil {
			return fmt.Errorf("instance %s never joined", in.id)
		}
		if in.group == schema.ManagersGroup {
			if n.role != providers.RoleManager || (!n.reach || !n.ready) && !m.held(n) {
				return fmt.Errorf("manager instance %s is not a reachable manager", in.id)
			}
		} else if n.role != providers.RoleWorker {
			return fmt.Errorf("worker instance %s is a %s", in.id, n.role)
		} else if !n.ready && !m.held(n) {
			return fmt.Errorf("worker %s is Down for longer than update.downGrace and was not replaced", in.id)
		}
		if n.ready {
			labels, avail := wanted(m.spec, in.group)
			for k, v := range labels {
				if n.labels[k] != v {
					return fmt.Errorf("node %s label %s=%q, want %q", n.id, k, n.labels[k], v)
				}
			}
			if _, ok := labels[NodeLabelManaged]; !ok && n.labels[NodeLabelManaged] != "" {
				return fmt.Errorf("node %s still lists managed labels %q, the spec sets none", n.id, n.labels[NodeLabelManaged])
			}
			if _, ok := n.labels[n.oldKey]; ok && n.oldKey != "" && labels[n.oldKey] == "" {
				return fmt.Errorf("node %s still has label %q, which swarmsync wrote and the spec dropped", n.id, n.oldKey)
			}
			if n.keepKey != "" && n.labels[n.keepKey] != "1" {
				return fmt.Errorf("node %s lost label %q, which swarmsync never managed", n.id, n.keepKey)
			}
			if n.avail != avail {
				return fmt.Errorf("node %s availability %s, want %s", n.id, n.avail, avail)
			}
		}
		have[in.group]++
	}
	for g, n := range want {
		if have[g] != n {
			return fmt.Errorf("group %s has %d members, want %d", g, have[g], n)
		}
	}
	for _, n := range m.nodes {
		if n.ghost && n.role == providers.RoleWorker && !n.created.Add(m.spec.Update.JoinTimeout.Duration).After(m.now) {
			return fmt.Errorf("ghost entry %s (created %s) is still in the Swarm", n.id, n.created.Format(time.RFC3339))
		}
		in := m.insts[n.inst]
		if (in == nil || !in.live) && !n.ready && (n.inst != "" || n.labels[providers.NodeLabelGroup] != "") {
			return fmt.Errorf("dead node %s is still in the Swarm", n.id)
		}
		foreign := n.inst == "" && n.labels[providers.NodeLabelGroup] == ""
		if n.role == providers.RoleManager && !(n.reach && n.ready) && !foreign && (in == nil || !in.unowned) && !m.held(n) {
			return fmt.Errorf("unreachable manager %s is still a member", n.id)
		}
	}
	return nil
}

// genSpec returns a random valid spec.
func genSpec(r *rand.Rand) schema.Cluster {
	img := func() string { return []string{"ami-1", "ami-2"}[r.IntN(2)] }
	avail := func(def string) string {
		if r.IntN(5) == 0 {
			return []string{"active", "drain", "pause"}[r.IntN(3)]
		}
		return def
	}
	c := schema.Cluster{
		Name:     "c",
		Provider: schema.Provider{AWS: &schema.AWSProvider{Region: "eu-west-1"}},
		Managers: schema.Managers{Count: []int{1, 3, 5, 7}[r.IntN(4)], Instance: schema.Instance{Type: "t3.small", Image: img()}, Availability: avail("drain")},
		Update: schema.Update{Parallelism: 1 + r.IntN(3), MaxSurge: r.IntN(3), JoinTimeout: schema.Duration{Duration: 10 * time.Minute},
			Delay: schema.Duration{Duration: 30 * time.Second}, Monitor: schema.Duration{Duration: time.Minute}, DrainTimeout: schema.Duration{Duration: 5 * time.Minute}, FailureAction: "pause"},
		Safety:     schema.Safety{MaxRemovalsPerApply: []int{1 + r.IntN(4), 5 + r.IntN(10), 50}[r.IntN(3)], AllowEmpty: r.IntN(2) == 0, Prune: r.IntN(2) == 0},
		JoinTokens: schema.JoinTokens{RotateAfterJoin: r.IntN(3) > 0},
		Workers:    map[string]schema.WorkerGroup{},
	}
	if r.IntN(3) == 0 {
		c.Managers.Labels = map[string]string{"role": "control"}
	}
	for _, name := range []string{"a", "b", "c"} {
		if r.IntN(3) == 0 {
			continue
		}
		g := schema.WorkerGroup{Count: r.IntN(9), Instance: schema.Instance{Type: "m5.large", Image: img(), Subnets: []string{"s-1", "s-2"}}, Availability: avail("active")}
		if r.IntN(2) == 0 {
			g.Labels = map[string]string{"tier": name}
		}
		c.Workers[name] = g
	}
	return c
}

// genModel returns a random observed state for spec.
func genModel(r *rand.Rand, spec schema.Cluster, now time.Time) *model {
	m := newModel(spec, now)
	if r.IntN(10) == 0 {
		return m // empty cluster: bootstrap
	}
	m.swarm = true
	zone := func() string { return []string{"a", "b", "c"}[r.IntN(3)] }
	config := func(group string) string {
		if r.IntN(5) == 0 {
			return "old-config"
		}
		return ConfigDigest(spec, group)
	}
	ago := func() time.Time { return now.Add(-time.Duration(11+r.IntN(1000)) * time.Minute) }
	labelNode := func(n *simNode, group string) {
		labels, av := wanted(spec, group)
		if r.IntN(6) > 0 {
			maps.Copy(n.labels, labels)
		} else {
			n.labels[providers.NodeLabelGroup] = group
		}
		if r.IntN(5) == 0 { // a label not managed by swarmsync
			n.keepKey = []string{"keep", "old", "x"}[r.IntN(3)]
			n.labels[n.keepKey] = "1"
		}
		if r.IntN(4) == 0 { // a label written by an earlier spec
			old := []string{"old", "old,x", "x%2C"}[r.IntN(3)]
			if old != n.keepKey {
				n.oldKey = old
				n.labels[old] = "1"
				keys := append(specKeys(labels), old)
				slices.Sort(keys)
				for i, k := range keys {
					keys[i] = strings.NewReplacer("%", "%25", ",", "%2C").Replace(k)
				}
				n.labels[NodeLabelManaged] = strings.Join(keys, ",")
			}
		}
		n.avail = av
		if r.IntN(8) == 0 {
			n.avail = []providers.Availability{"active", "drain", "pause"}[r.IntN(3)]
		}
		n.drained = n.avail == providers.AvailabilityDrain
		n.noEngineTag = r.IntN(5) == 0
	}
	member := func(group string, role providers.Role) {
		in := m.addInst(group, config(group), zone(), ago(), false)
		switch x := r.IntN(20); {
		case x == 0: // pending join
			in.launched = now.Add(-time.Duration(r.IntN(9)) * time.Minute)
			return
		case x == 1: // never joined
			return
		}
		if role == providers.RoleWorker && r.IntN(40) == 0 {
			role = providers.RoleManager // a worker that was promoted by hand
		}
		n := m.addNode(in.id, role)
		labelNode(n, group)
		if r.IntN(14) == 0 {
			n.ready, n.reach = false, false // Down (an unreachable manager)
			if r.IntN(3) == 0 {
				in.launched = now.Add(-time.Duration(r.IntN(9)) * time.Minute) // Down while it starts
			}
		} else if role == providers.RoleManager && r.IntN(15) == 0 {
			n.reach = false // Ready but unreachable
		}
	}
	nm := 1 + r.IntN(7)
	for range nm {
		member(schema.ManagersGroup, providers.RoleManager)
	}
	if r.IntN(8) == 0 { // a manager whose instance is gone
		n := m.addNode("i-gone-m", providers.RoleManager)
		n.labels[providers.NodeLabelGroup] = schema.ManagersGroup
		n.ready, n.reach = false, false
	}
	if r.IntN(5) == 0 { // managers swarmsync does not own, reachable or not
		for range 1 + r.IntN(2) {
			n := m.addNode("", providers.RoleManager)
			if r.IntN(2) == 0 {
				n.ready, n.reach = false, false
			}
		}
	}
	var reach []*simNode
	for _, n := range m.nodes {
		if n.role == providers.RoleManager && n.reach && n.ready {
			reach = append(reach, n)
		}
	}
	if len(reach) == 0 {
		in := m.addInst(schema.ManagersGroup, ConfigDigest(spec, schema.ManagersGroup), zone(), ago(), false)
		n := m.addNode(in.id, providers.RoleManager)
		labelNode(n, schema.ManagersGroup)
		reach = append(reach, n)
	}
	slices.SortFunc(reach, func(a, b *simNode) int { return strings.Compare(a.id, b.id) })
	reach[r.IntN(len(reach))].leader = true // leader anywhere
	for _, g := range []string{"a", "b", "c", "gone"} {
		n := r.IntN(9)
		if sg, ok := spec.Workers[g]; ok && r.IntN(3) > 0 {
			n = max(0, sg.Count+r.IntN(5)-2) // near the spec's count
		} else if g == "gone" && r.IntN(3) > 0 {
			n = 0
		}
		for range n {
			member("workers/"+g, providers.RoleWorker)
		}
		if r.IntN(6) == 0 { // a Down node whose instance is gone
			n := m.addNode(fmt.Sprintf("i-gone-%s", g), providers.RoleWorker)
			n.labels[providers.NodeLabelGroup] = "workers/" + g
			n.ready = false
		}
	}
	for range r.IntN(3) { // unowned instances, some with Ready nodes
		in := m.addInst("workers/a", "x", zone(), ago(), true)
		if r.IntN(2) == 0 {
			n := m.addNode(in.id, providers.RoleWorker)
			n.labels["other"] = "yes"
		}
	}
	return m
}

// justJoined makes some members look as if they joined just now: their
// instances launched within joinTimeout (so the cloud may not list them
// yet), and some of their nodes not labelled yet (the pass that launched
// them stopped between await-join and label).
func (m *model) justJoined(r *rand.Rand) {
	for _, id := range slices.Sorted(maps.Keys(m.insts)) {
		in := m.insts[id]
		n := m.nodeOfInst(id)
		if !in.live || in.unowned || n == nil || !n.ready || r.IntN(4) > 0 || n.oldKey != "" {
			continue // (a node that joined just now has no label of an earlier spec)
		}
		in.launched = m.now.Add(-time.Duration(r.IntN(9)) * time.Minute)
		if n.viaToken {
			// It joined half a minute after its launch: after the last
			// rotation, its token is still valid.
			n.created = in.launched.Add(30 * time.Second)
			if n.created.After(m.now) {
				n.created = m.now
			}
			if since := cmp.Or(m.rotated, m.created); since.IsZero() || n.created.After(since) {
				n.epoch = m.rotations
			}
		}
		launchedAs := providers.RoleWorker
		if in.group == schema.ManagersGroup {
			launchedAs = providers.RoleManager
		}
		// (A node without the engine label is one joined by other means:
		// without the group label too it is a node swarmsync does not own,
		// and a pass killed after terminating its instance would leave it
		// for good; every node swarmsync launches has the engine label.)
		if n.role == launchedAs && r.IntN(3) == 0 && !n.noEngineTag {
			delete(n.labels, providers.NodeLabelGroup)
		}
	}
}

// lag hides, for one pass, some instances launched within joinTimeout
// whose nodes are Ready (the cloud's listing is eventually consistent), or
// else some of their worker nodes (as if they had not joined yet). Only
// instances whose nodes carry the engine label are hidden: every node
// swarmsync launches carries it, and without it nothing ties a node to an
// instance the cloud does not list. Never both: what neither the cloud
// nor the Swarm shows, no planner can see.
func (m *model) lag(r *rand.Rand) {
	m.hideInst, m.hideNode = map[string]bool{}, map[string]bool{}
	jt := m.spec.Update.JoinTimeout.Duration
	for _, id := range slices.Sorted(maps.Keys(m.insts)) {
		in := m.insts[id]
		if !in.live || in.unowned || !in.launched.Add(jt).After(m.now) {
			continue
		}
		n := m.nodeOfInst(id)
		switch {
		case n == nil || !n.ready:
		case !n.noEngineTag && r.IntN(2) == 0:
			m.hideInst[id] = true
		case n.role == providers.RoleWorker && r.IntN(3) == 0:
			m.hideNode[n.id] = true
		}
	}
}

// requested counts, from the model, the removals the spec asks for (scale
// down and prune) and the declared groups of count 0 that have members.
func (m *model) requested() (removals int, emptied bool) {
	want := map[string]int{schema.ManagersGroup: m.spec.Managers.Count}
	for name, g := range m.spec.Workers {
		want[schema.WorkerGroupName(name)] = g.Count
	}
	have := map[string]int{}
	for _, in := range m.insts {
		if !in.live || in.unowned {
			continue
		}
		n := m.nodeOfInst(in.id)
		pending := n == nil && in.launched.Add(m.spec.Update.JoinTimeout.Duration).After(m.now)
		_, declared := want[in.group]
		switch {
		case !declared:
			if m.spec.Safety.Prune {
				removals++
			}
		case pending:
			have[in.group]++
		case n == nil:
		case n.role == providers.RoleManager && !(n.reach && n.ready) && !m.held(n):
		case in.group == schema.ManagersGroup && n.role != providers.RoleManager:
		case n.role == providers.RoleWorker && !n.ready && !m.held(n):
			// Down for good: replaced, not counted.
		default:
			have[in.group]++
		}
	}
	for g, w := range want {
		removals += max(0, have[g]-w)
		if w == 0 && have[g] > 0 {
			emptied = true
		}
	}
	return removals, emptied
}

func checkRefusal(t *testing.T, m *model, err error) {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("Compute: %v (want a RefusedError or a plan)", err)
	}
	removals, emptied := m.requested()
	switch re.Field {
	case "safety.maxRemovalsPerApply":
		if removals <= m.spec.Safety.MaxRemovalsPerApply {
			t.Fatalf("refused by %s, but the spec asks for %d removals (limit %d)", re.Field, removals, m.spec.Safety.MaxRemovalsPerApply)
		}
	case "safety.allowEmpty":
		if !emptied || m.spec.Safety.AllowEmpty {
			t.Fatalf("refused by %s, but no group is emptied or allowEmpty is set", re.Field)
		}
	default:
		t.Fatalf("refusal names field %q", re.Field)
	}
	if !strings.Contains(re.Error(), re.Field) {
		t.Fatalf("refusal %q does not say how to change it", re.Error())
	}
}

// heldUntil returns when the next disruption window opens, as a plan's
// note says, and whether the plan holds changes back.
func heldUntil(p *Plan) (time.Time, bool) {
	for _, n := range p.Notes {
		if !strings.Contains(n, "are held back") {
			continue
		}
		_, after, ok := strings.Cut(n, "the next window opens at ")
		if !ok {
			return time.Time{}, true
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSuffix(after, "."))
		if err != nil {
			return time.Time{}, true
		}
		return t, true
	}
	return time.Time{}, false
}

// TestPlanProperties plans random specs against random observed states
// and executes each plan on the model: every intermediate state keeps
// quorum, workers are drained before they go, removals stay within the
// limit, unowned instances are untouched, and re-planning converges to the
// spec. A third of the cases start with members that joined just now and
// see lag in their first passes (instances missing from the cloud's
// listing while their nodes are Ready, nodes not seen while their
// instances are listed): no launch goes beyond the spec counting what is
// hidden (checkLaunchBound), nothing acts on a Ready node whose instance is
// only hidden, every hidden instance is named in a note, and once the lag
// ends re-planning converges. A quarter of the cases have ghost entries
// (joins that never completed, addGhosts): no step touches a manager one
// or one younger than update.joinTimeout, old worker ones are removed
// without drain within the removal budget (a note says what it defers), a
// note names each old manager one, and a converged cluster has no old
// worker one left.
func TestPlanProperties(t *testing.T) {
	const cases = 10000
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	stats := map[string]int{}
	for i := range cases {
		r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
		spec := genSpec(r)
		wins := genWindows(r)
		for _, w := range wins {
			spec.Schedule.DisruptionWindows = append(spec.Schedule.DisruptionWindows, schema.Window{Cron: w.cron(), Duration: schema.Duration{Duration: w.dur}})
		}
		now := base
		if len(wins) > 0 {
			now = base.Add(time.Duration(r.IntN(14*24*60)) * time.Minute)
		}
		// Half the cases rotate the join tokens on a schedule, some with a
		// rotation recorded already (their own random stream).
		rr := rand.New(rand.NewPCG(uint64(i), 0x707))
		// update.downGrace (none in a third of the cases) and since when
		// the Down nodes are Down (their own random stream).
		gr := rand.New(rand.NewPCG(uint64(i), 0x96ace))
		spec.Update.DownGrace = schema.Duration{Duration: []time.Duration{0, 2 * time.Minute, 5 * time.Minute}[gr.IntN(3)]}
		// In a quarter of the cases steps fail at random in the first
		// passes (tasks that cannot move, joins that time out, API
		// errors), under either failureAction (their own stream).
		fr := rand.New(rand.NewPCG(uint64(i), 0xfa11))
		failPasses := 0
		if fr.IntN(4) == 0 {
			failPasses = 1 + fr.IntN(3)
			spec.Update.FailureAction = []string{"pause", "continue"}[fr.IntN(2)]
		}
		var rotCron cron.Schedule
		if rr.IntN(2) == 0 {
			spec.Schedule.RotateJoinTokens = rotationCrons[rr.IntN(len(rotationCrons))]
			rotCron, _ = schema.ParseCron(spec.Schedule.RotateJoinTokens)
			stats["rotation-scheduled"]++
		}
		m := genModel(r, spec, now)
		m.windows = wins
		m.failRand = fr
		m.downTimes(gr)
		if m.swarm && rr.IntN(3) > 0 {
			m.rotated = now.Add(-time.Duration(rr.IntN(10*24*60)) * time.Minute)
		}
		if m.swarm && rr.IntN(2) == 0 {
			m.created = now.Add(-time.Duration(rr.IntN(30*24*60)) * time.Minute)
		}
		// Nodes' creation times, the manager's clock (ahead of swarmsync's
		// by up to ten minutes), and in half the cases an apply killed
		// after a random prefix of its steps in one of the first passes
		// (its own random stream).
		kr := rand.New(rand.NewPCG(uint64(i), 0x6b11))
		m.stamp(kr)
		if kr.IntN(2) == 0 {
			m.skew = time.Duration(kr.IntN(600)) * time.Second
		}
		killPass, killed := 0, -1
		if kr.IntN(2) == 0 {
			killPass = 1 + kr.IntN(2)
		}
		// In a quarter of the cases, ghost entries: joins that never
		// completed, old and young (their own random stream).
		var youngGhosts []string
		if k := m.addGhosts(rand.New(rand.NewPCG(uint64(i), 0x9405))); k > 0 {
			stats["ghost-cases"]++
			stats["ghost-entries"] += k
			for id, n := range m.nodes {
				if n.ghost && n.role == providers.RoleWorker && n.created.Add(spec.Update.JoinTimeout.Duration).After(now) {
					youngGhosts = append(youngGhosts, id)
				}
			}
		}
		if m.truthKnown && spec.JoinTokens.RotateAfterJoin && len(m.exposed()) > 0 {
			stats["tokens-valid-at-start"]++
		}
		// A third of the cases see the cloud's and the Swarm's lag in their
		// first passes (its own random stream: the other cases stay as
		// they are).
		lr := rand.New(rand.NewPCG(uint64(i), 0x1a6))
		lagPasses := 0
		if m.swarm && lr.IntN(3) == 0 {
			lagPasses = 1 + lr.IntN(3)
			m.justJoined(lr)
			stats["lag"]++
		}
		desc := func() string {
			b, _ := MarshalObserved(m.observe())
			return fmt.Sprintf("case %d\nspec: %+v\nhidden instances %v, hidden nodes %v\nobserved: %s", i, spec, slices.Sorted(maps.Keys(m.hideInst)), slices.Sorted(maps.Keys(m.hideNode)), b)
		}
		unowned := map[string]bool{}
		for id, in := range m.insts {
			if in.unowned {
				unowned[id] = true
			}
		}
		converged := false
		var prev []stepView
		noLeaderPass := 0
		if gr.IntN(10) == 0 {
			noLeaderPass = 1 + gr.IntN(2)
		}
		for pass := 1; pass <= 40; pass++ {
			m.lapse()
			m.noLeader = pass == noLeaderPass
			m.failEvery = 0
			if pass <= failPasses {
				m.failEvery = 6
			}
			lagging := pass <= lagPasses
			m.hideInst, m.hideNode = nil, nil
			if lagging {
				m.lag(lr)
			}
			before := desc()
			p, err := Compute(spec, m.observe(), Source{})
			if err != nil {
				if pass > 1 && pass <= lagPasses+1 {
					// The lag hid a node's group in an earlier pass (a
					// worker not labelled yet is counted in no group), so
					// that pass could not see the spec's removals; the
					// refusal must still be what the truth asks for.
					checkRefusal(t, m, err)
					stats["refused-after-lag"]++
					converged = true
					break
				}
				if pass > 1 {
					t.Fatalf("pass %d refused after an accepted pass: %v\nprevious plan: %s\n%s", pass, err, prev, before)
				}
				checkRefusal(t, m, err)
				stats["refused"]++
				converged = true
				break
			}
			members, reach := m.raft()
			if m.swarm && reach < quorum(members) {
				if len(p.Steps) != 0 || !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "--force-new-cluster") }) {
					t.Fatalf("lost quorum: want no steps and a recovery note, got %d steps, notes %q\n%s", len(p.Steps), p.Notes, before)
				}
				stats["lost-quorum"]++
				converged = true
				break
			}
			prev = view(p)
			if m.noLeader && m.swarm {
				stats["leader-missing"]++
				if len(p.Steps) > 0 || !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "nothing is planned until a leader is known") }) {
					t.Fatalf("pass %d: no leader is observed, but the plan has %d steps and notes %q\n%s", pass, len(p.Steps), p.Notes, before)
				}
				continue
			}
			if err := checkHeld(p, m); err != nil {
				js, _ := MarshalPlan(p)
				t.Fatalf("pass %d: %v\n%s\nplan: %s", pass, err, before, js)
			}
			stats["down-held"] += len(m.heldNodes())
			if deferred, young, err := checkGhosts(p, m); err != nil {
				js, _ := MarshalPlan(p)
				t.Fatalf("pass %d: %v\n%s\nplan: %s", pass, err, before, js)
			} else {
				stats["ghost-removals-deferred"] += deferred
				stats["ghost-young-left"] += young
			}
			if err := checkStopped(p, m); err != nil {
				t.Fatalf("pass %d: %v\n%s", pass, err, before)
			}
			if in := m.insts[m.inFlightInst]; in != nil && m.nodeOfInst(in.id) == nil && !in.launched.Add(spec.Update.JoinTimeout.Duration).After(m.now) {
				// A manager launch of a killed pass whose machine never
				// joined within joinTimeout: no raft change any more.
				m.inFlight, m.inFlightInst = "", ""
			}
			if due, err := checkRotation(p, m, rotCron); err != nil {
				t.Fatalf("pass %d: %v\n%s", pass, err, before)
			} else if due {
				stats["rotation-due"]++
			}
			for id := range m.hideInst {
				if !slices.ContainsFunc(p.Notes, func(n string) bool {
					return strings.Contains(n, "names instance "+id+", which the cloud does not list yet")
				}) {
					t.Fatalf("pass %d: instance %s is hidden while its node is Ready, but no note says it is waited for: %q\n%s", pass, id, p.Notes, before)
				}
				stats["lag-hidden-instances"]++
			}
			stats["lag-hidden-nodes"] += len(m.hideNode)
			// A Ready worker whose instance is listed as terminated is
			// removed in this pass (apply waits until it is Down), unless
			// safety.maxRemovalsPerApply defers it.
			for _, id := range slices.Sorted(maps.Keys(m.nodes)) {
				n := m.nodes[id]
				if in := m.insts[n.inst]; in == nil || in.live || !n.ready || n.noEngineTag || n.role != providers.RoleWorker || m.hideNode[id] {
					continue
				}
				if !slices.ContainsFunc(p.Steps, func(s Step) bool { return s.Action == ActionRemoveNode && s.Node == id }) &&
					!slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "later pass") }) {
					t.Fatalf("pass %d: node %s is Ready but its instance %s is listed as terminated, and the plan does not remove it: %v, notes %q\n%s", pass, id, n.inst, view(p), p.Notes, before)
				}
				stats["ready-node-of-terminated-instance-removed"]++
			}
			m.closed = !m.windowOpen(m.now)
			next, held := heldUntil(p)
			switch {
			case held && !m.closed:
				t.Fatalf("pass %d: a disruption window is open at %s but the plan holds changes back: %q\n%s", pass, m.now.Format(time.RFC3339), p.Notes, before)
			case held:
				if !next.After(m.now) || !m.windowOpen(next) || (!next.Add(-time.Second).Before(m.now) && m.windowOpen(next.Add(-time.Second))) {
					t.Fatalf("pass %d: at %s the plan says the next window opens at %s, which is not when one opens\n%s", pass, m.now.Format(time.RFC3339), next.Format(time.RFC3339), before)
				}
			}
			if pass == killPass && len(p.Steps) > 0 {
				k := kr.IntN(len(p.Steps))
				if err := m.runPrefix(p, r, k); err != nil {
					js, _ := MarshalPlan(p)
					t.Fatalf("pass %d (killed after %d steps): %v\n%s\nplan: %s", pass, k, err, before, js)
				}
				m.kill(kr)
				killed = pass
				stats["killed"]++
				for _, n := range m.nodes {
					if n.lingering > 0 {
						stats["killed-left-ready-node-of-terminated-instance"]++
					}
				}
				if m.truthKnown && spec.JoinTokens.RotateAfterJoin && len(m.exposed()) > 0 {
					stats["killed-between-join-and-rotation"]++
				}
				if held {
					m.now = next
				}
				continue
			}
			if err := m.run(p, r); err != nil {
				js, _ := MarshalPlan(p)
				t.Fatalf("pass %d: %v\n%s\nplan: %s", pass, err, before, js)
			}
			if m.failed > 0 {
				// Apply waited for what failed; the pass says nothing
				// about convergence.
				stats["steps-failed-"+spec.Update.FailureAction] += m.failed
				m.now = m.now.Add(m.waited)
				if !held {
					continue
				}
			}
			if held {
				// Wait for the window the note names, then plan again.
				m.now = next
				stats["held-for-window"]++
				continue
			}
			if len(p.Steps) == 0 && lagging {
				continue // the lag may hide what is left to do
			}
			if len(p.Steps) == 0 && !m.swarm && slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "No Swarm is reachable") }) {
				// The first manager never came up: the operator destroys
				// the cluster, to try again.
				for _, in := range m.insts {
					if !in.unowned {
						in.live = false
					}
				}
				stats["bootstrap-failed-destroyed-by-hand"]++
				continue
			}
			if len(p.Steps) == 0 && len(p.LaunchStopped) > 0 {
				// A group stopped launching although joins work here:
				// the operator terminates what it kept, to try again.
				for _, st := range p.LaunchStopped {
					for _, id := range st.Instances {
						m.insts[id].live = false
					}
				}
				stats["launch-stopped-retried-by-hand"]++
				continue
			}
			if len(p.Steps) == 0 && len(m.heldNodes()) > 0 {
				// Nodes are left alone within update.downGrace: wait.
				stats["down-came-back"] += m.flap(gr)
				stats["down-grace-waited"]++
				continue
			}
			if len(p.Steps) == 0 {
				if slices.ContainsFunc(p.Notes, func(n string) bool {
					return strings.Contains(n, "below quorum") || strings.Contains(n, "break quorum") || strings.Contains(n, "is the leader but should be a worker")
				}) {
					// Blocked on purpose and said in a note: a change would
					// break quorum (unreachable managers it does not own),
					// or the leader sits in a worker group.
					stats["blocked-by-quorum"]++
					converged = true
					break
				}
				if err := m.converged(); err != nil {
					t.Fatalf("pass %d: empty plan but not converged: %v\nnotes: %q\n%s", pass, err, p.Notes, before)
				}
				// joinTokens.rotateAfterJoin: no token a node joined with
				// is still valid, however the passes were killed.
				if x := m.exposed(); spec.JoinTokens.RotateAfterJoin && m.truthKnown && len(x) > 0 {
					t.Fatalf("pass %d: converged, but nodes %v joined with a join token that is still valid (recorded rotation %s)\n%s", pass, x, providers.FormatRotated(m.rotated), before)
				}
				stats[fmt.Sprintf("passes-%d", min(pass, 4))]++
				converged = true
				break
			}
			if (pass == 1 || pass == killed+1) && !slices.ContainsFunc(p.Notes, func(n string) bool {
				return strings.Contains(n, "later pass") || strings.Contains(n, "below quorum") || strings.Contains(n, "break quorum") || strings.Contains(n, "removed once it is Down")
			}) && len(wins) == 0 && pass > lagPasses {
				// Not bounded by a limit: one pass must be enough, also
				// right after a killed apply.
				if pass == killed+1 {
					stats["one-pass-after-kill"]++
				}
				p2, err := Compute(spec, m.observe(), Source{})
				if err != nil || len(p2.Steps) != 0 {
					js, _ := MarshalPlan(p2)
					t.Fatalf("an unbounded plan did not converge in one pass (err %v): second plan %s\nfirst plan notes %q\n%s", err, js, p.Notes, desc())
				}
			}
		}
		if !converged {
			t.Fatalf("did not converge in 40 passes\n%s", desc())
		}
		for id := range unowned {
			if in := m.insts[id]; !in.live {
				t.Fatalf("unowned instance %s was terminated", id)
			}
		}
		stats["ghost-removed"] += m.ghostsRemoved
		for _, id := range youngGhosts {
			if m.nodes[id] == nil {
				stats["ghost-young-aged-then-removed"]++
			}
		}
	}
	t.Logf("%d cases: %v", cases, stats)
}

// rotationCrons are the schedule.rotateJoinTokens of the property cases.
var rotationCrons = []string{"@weekly", "@daily", "0 3 * * SUN", "@every 6h", "@every 36h", "*/30 * * * *"}

// checkRotation checks the plan's join-token rotation against the model,
// with an oracle of its own: a scheduled rotation is due when the swarm
// exists and some activation of the cron lies in (since, now], since being
// the recorded rotation, else the swarm's creation (for "@every d", a
// multiple of d since the epoch). A due rotation rotates both tokens and
// names the schedule; a rotation that is not due does not. It returns
// whether one was due.
func checkRotation(p *Plan, m *model, sched cron.Schedule) (bool, error) {
	due := false
	if sched != nil && m.swarm {
		now := m.now.Truncate(time.Second)
		since := m.rotated
		if since.IsZero() {
			since = m.created
		}
		if every, ok := sched.(cron.ConstantDelaySchedule); ok {
			d := int64(every.Delay / time.Second)
			due = since.IsZero() || now.Unix()/d > since.Unix()/d
		} else {
			from := since
			if from.IsZero() {
				from = now.Add(-400 * 24 * time.Hour)
			}
			due = !sched.Next(from).After(now)
		}
	}
	var rot []Step
	for _, s := range p.Steps {
		if s.Action == ActionRotateJoinToken {
			rot = append(rot, s)
		}
	}
	if len(rot) > 1 {
		return due, fmt.Errorf("%d join-token rotations in one plan", len(rot))
	}
	scheduled := len(rot) == 1 && strings.Contains(rot[0].Reason, "schedule.rotateJoinTokens")
	switch {
	case due && !scheduled:
		return due, fmt.Errorf("schedule.rotateJoinTokens %q is due at %s (recorded %s) but the plan does not rotate on it: %v", m.spec.Schedule.RotateJoinTokens, m.now.Format(time.RFC3339), m.rotated.Format(time.RFC3339), view(p))
	case !due && scheduled:
		return due, fmt.Errorf("the plan rotates on schedule.rotateJoinTokens %q at %s although it is not due (recorded %s): %s", m.spec.Schedule.RotateJoinTokens, m.now.Format(time.RFC3339), m.rotated.Format(time.RFC3339), rot[0].Reason)
	case len(rot) == 1 && !(rot[0].RotateWorker && rot[0].RotateManager):
		return due, fmt.Errorf("a rotation rotates worker=%v manager=%v, want both", rot[0].RotateWorker, rot[0].RotateManager)
	case scheduled && !rot[0].RecordRotatedAt.Equal(m.now.Truncate(time.Second)):
		return due, fmt.Errorf("a scheduled rotation records %s, want the observation time %s", rot[0].RecordRotatedAt, m.now)
	case len(rot) == 1 && !scheduled && !rot[0].RecordRotatedAt.IsZero():
		return due, fmt.Errorf("a rotation that is not scheduled records %s, want nothing but the nodes' creation", rot[0].RecordRotatedAt)
	}
	return due, nil
}
