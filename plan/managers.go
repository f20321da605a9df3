package plan

import (
	"fmt"
	"slices"

	"github.com/swarmsync/swarmsync/schema"
)

// managers plans the manager group as one chain of raft changes. The
// out-of-date leader is left to leaderLast.
func (b *builder) managers() {
	c := &b.c
	g := c.groups[schema.ManagersGroup]
	chain := ""
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
		chain = b.demoteStray(m, chain)
	}
	for _, m := range g.misplaced {
		if b.allow(m) && b.takeHeal() {
			chain, _ = b.managerLeave(m, "the manager was demoted but not removed (an interrupted removal)", 0, chain)
		}
	}
	g.staleLeft = len(g.evidence)
	for _, m := range g.stale {
		if b.takeHeal() {
			chain = b.terminateStale(m, b.staleReason(g), chain)
		} else {
			g.staleLeft++
		}
	}
	for _, m := range g.orphans {
		if b.takeHeal() {
			chain = b.removeOrphan(m, chain)
		}
	}
	for _, m := range g.pending {
		chain = b.awaitPending(m, chain)
	}
	b.waitingNotes(g)
	want := b.d.Managers.Count
	kept := slices.Clone(g.kept)
	// Scale down: never the leader (at least one manager stays), nor an
	// instance whose node has not joined yet (its role is not known).
	if excess := len(kept) - want; excess > 0 {
		cands := slices.DeleteFunc(slices.Clone(kept), func(m *member) bool {
			return (m.frozen && !m.held) || m.isLeader(b.leader) || m.node == nil
		})
		if joining := len(g.pending); len(cands) < excess && joining > 0 {
			b.note("%d manager instance(s) have not joined yet; the scale-down to managers.count %d does not pick them: a later pass removes what is still too many.", joining, want)
		}
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
	if n := want - len(kept); n > 0 && len(g.evidence) == 0 {
		// The terminates planned so far are in the chain before it.
		gone := 0
		for _, s := range b.steps {
			if s.Action == ActionTerminate && s.Group == g.name {
				gone++
			}
		}
		for i := range b.fill(g, b.liveIn(g)-gone, n) {
			chain = b.launch(schema.ManagersGroup, 1, false, fmt.Sprintf("managers.count is %d, %s (one raft change at a time)", want, inPlace(len(kept)+i)), 0, chain)
		}
	}
	// Replacement, surge first: not while an instance that never joined
	// holds the surge slot, nor while new managers fail to join; a manager
	// whose node has not joined yet is replaced by a later pass.
	var outdated []*member
	for _, m := range kept {
		if m.outdated && !m.frozen && m.node != nil && !m.isLeader(b.leader) && g.staleLeft == 0 {
			outdated = append(outdated, m)
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(kept), func(m *member) bool { return !m.outdated || m.node != nil })); n > 0 {
		b.note("%d out-of-date manager instance(s) have not joined yet; a later pass replaces them once they have.", n)
	}
	replaced := map[*member]bool{}
	for _, m := range pickVictims(outdated, len(outdated), kept) {
		if !b.allow(m) || !b.takeReplace() {
			continue
		}
		bt := b.nextBatch(schema.ManagersGroup)
		chain = b.launch(schema.ManagersGroup, 1, false, "surge: replaces out-of-date manager "+m.id(), bt, chain)
		chain, _ = b.managerLeave(m, "its swarmsync:config is out of date", bt, chain)
		replaced[m] = true
	}
	for _, m := range kept {
		if !replaced[m] && m.joinStep == "" && !(m.outdated && m.isLeader(b.leader)) {
			b.labelDrift(m, "")
		}
	}
}

// demoteStray plans the demotion of a manager of a worker group, after
// chain, when it may go and quorum allows; otherwise it freezes it (with a
// note). It returns the chain's new last step.
func (b *builder) demoteStray(m *member, chain string) string {
	switch {
	case !b.allow(m):
		m.frozen = true
		return chain
	case m.isLeader(b.leader):
		b.note("Node %s of group %s is the leader but should be a worker; it is left as it is. Move leadership away and run swarmsync again.", m.node.ID, m.group)
		m.frozen = true
		return chain
	case b.reach-1 < quorum(b.members-1):
		b.note("Node %s of group %s is a manager but should be a worker; demoting it now would break quorum, so it is left as it is.", m.node.ID, m.group)
		m.frozen = true
		return chain
	}
	s, t := target(Step{Action: ActionDemote, Reason: "a node of a worker group must not be a manager", DependsOn: []string{chain}}, m)
	chain = b.add(s, t)
	m.joinStep = chain // later steps on it wait for the demotion
	b.members--
	b.reach--
	return chain
}

// leaderLast replaces the leader when it is out of date, after every other
// step: a surge manager joins, the join tokens are rotated, and only then
// is the leader demoted, removed and terminated. Without it, it plans the
// join-token rotation alone.
func (b *builder) leaderLast() {
	g := b.c.groups[schema.ManagersGroup]
	var lm *member
	for _, m := range g.kept {
		if m.isLeader(b.c.leader) && m.outdated {
			lm = m
		}
	}
	if lm == nil || g.staleLeft > 0 || !b.allow(lm) || !b.takeReplace() {
		if lm != nil {
			b.labelDrift(lm, "")
		}
		b.rotateTokens(nil)
		return
	}
	bt := b.nextBatch(schema.ManagersGroup)
	last := b.launch(schema.ManagersGroup, 1, false, "surge: replaces the out-of-date leader "+lm.id()+" (the leader goes last)", bt, b.leaves()...)
	rot := b.rotateTokens([]string{last})
	b.managerLeave(lm, "its swarmsync:config is out of date", bt, lastOf([]string{last, rot}))
}

// nextBatch starts the next rolling-replacement batch of group and returns
// its number.
func (b *builder) nextBatch(group string) int {
	b.batch[group]++
	return b.batch[group]
}

// staleReason is the reason of the terminate of an instance whose node
// never joined.
func (b *builder) staleReason(g *groupState) string {
	if len(g.evidence) > 0 {
		return fmt.Sprintf("its node never joined within update.joinTimeout (%s); it is not replaced while the group's new machines fail to join", b.d.Update.JoinTimeout.Duration)
	}
	return fmt.Sprintf("its node never joined within update.joinTimeout (%s); it is replaced", b.d.Update.JoinTimeout.Duration)
}
