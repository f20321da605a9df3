package plan

import "github.com/swarmsync/swarmsync/providers"

// target fills a step's target fields for member m and returns the step
// and the target part of its id.
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
		s, t := target(Step{Action: ActionAwaitDrained, Reason: why + ": it is drained already; wait until no task runs on it (bounded by update.drainTimeout)", DependsOn: after, Batch: batch}, m)
		return []string{b.add(s, t)}
	}
	s, t := target(Step{Action: ActionDrain, Availability: providers.AvailabilityDrain, Reason: why + ": move its tasks elsewhere first", DependsOn: after, Batch: batch}, m)
	after = []string{b.add(s, t)}
	s, t = target(Step{Action: ActionAwaitDrained, Reason: "wait until its tasks run elsewhere (bounded by update.drainTimeout)", DependsOn: after, Batch: batch}, m)
	return []string{b.add(s, t)}
}

// lastOf returns the last non-empty id of ids ("" when none).
func lastOf(ids []string) string {
	for i := len(ids) - 1; i >= 0; i-- {
		if ids[i] != "" {
			return ids[i]
		}
	}
	return ""
}

// workerLeave plans a worker's exit: drain → await-drained → terminate →
// remove-node, and returns its last step.
func (b *builder) workerLeave(m *member, why string, batch int, after ...string) string {
	last := b.drainFirst(m, why, batch, b.deregisterFirst(m, why, batch, after))
	if m.inst != nil {
		s, t := target(Step{Action: ActionTerminate, Reason: why, DependsOn: last, Batch: batch, Removal: true}, m)
		last = []string{b.add(s, t)}
	}
	if m.node != nil || m.joinStep != "" {
		s, t := target(Step{Action: ActionRemoveNode, Reason: "forget the node once it is Down", DependsOn: last, Batch: batch, Removal: m.inst == nil}, m)
		last = []string{b.add(s, t)}
	}
	return lastOf(last)
}

// managerLeave plans a manager's exit: [drain → await-drained when it runs
// tasks] → demote → remove-node → terminate, and returns its last step. The
// demotion is planned only when the remaining reachable managers keep
// quorum; otherwise it notes why, plans nothing and returns after, false.
func (b *builder) managerLeave(m *member, why string, batch int, after string) (string, bool) {
	isReach := m.isReachable()
	if m.isManager() && isReach && b.reach-1 < quorum(b.members-1) {
		b.note("Not removing manager %s (%s): %d of %d managers are reachable and removing it would leave %d of %d, below quorum.", m.id(), why, b.reach, b.members, b.reach-1, b.members-1)
		return after, false
	}
	last := b.drainFirst(m, why, batch, b.deregisterFirst(m, why, batch, []string{after}))
	if m.isManager() {
		reason := why + ": leave the raft membership (one change at a time)"
		if m.isLeader(b.leader) {
			reason = why + ": the leader is demoted last; leadership moves to another manager and the rest of this plan is finished by the new leader"
		}
		s, t := target(Step{Action: ActionDemote, Reason: reason, DependsOn: last, Batch: batch}, m)
		last = []string{b.add(s, t)}
		b.members--
		if isReach {
			b.reach--
		}
	}
	if m.node != nil || m.joinStep != "" {
		s, t := target(Step{Action: ActionRemoveNode, Reason: "forget the node", DependsOn: last, Batch: batch, Removal: m.inst == nil}, m)
		last = []string{b.add(s, t)}
	}
	if m.inst != nil {
		s, t := target(Step{Action: ActionTerminate, Reason: why, DependsOn: last, Batch: batch, Removal: true}, m)
		last = []string{b.add(s, t)}
	}
	return lastOf(last), true
}

// removeOrphan plans the remove-node of a node whose instance is gone and
// returns its id.
func (b *builder) removeOrphan(m *member, after string) string {
	why := "the node is Down and its instance is gone"
	if m.gone {
		why = "its instance is terminated: the node is removed once the Swarm sees it Down (the step waits for it)"
	}
	s, t := target(Step{Action: ActionRemoveNode, Removal: true, DependsOn: []string{after}, Reason: why}, m)
	return b.add(s, t)
}

// terminateStale plans the terminate of an instance whose node never
// joined within update.joinTimeout and returns its id.
func (b *builder) terminateStale(m *member, why string, after string) string {
	s, t := target(Step{Action: ActionTerminate, Removal: true, DependsOn: b.deregisterFirst(m, why, 0, []string{after}), Reason: why}, m)
	return b.add(s, t)
}
