package plan

import (
	"fmt"
	"slices"
	"strings"
)

// workers plans one worker group (or a group no longer in the spec).
func (b *builder) workers(name string) {
	g := b.c.groups[name]
	want, declared := desiredCount(b.d, name)
	for _, m := range g.orphans {
		if b.takeHeal() {
			b.removeOrphan(m, "")
		}
	}
	b.waitingNotes(g)
	if !declared {
		b.prune(g)
		return
	}
	g.staleLeft = len(g.evidence)
	var gone []string // the stale instances terminated: launches wait for them
	for _, m := range g.stale {
		if b.takeHeal() {
			gone = append(gone, b.terminateStale(m, b.staleReason(g), ""))
		} else {
			g.staleLeft++
		}
	}
	for _, m := range g.pending {
		b.awaitPending(m, "")
	}
	kept := slices.Clone(g.kept)
	short := strings.TrimPrefix(name, "workers/")
	if excess := len(kept) - want; excess > 0 {
		movable := slices.DeleteFunc(slices.Clone(kept), func(m *member) bool { return m.frozen && !(m.held && !m.isManager()) })
		for _, m := range pickVictims(movable, excess, kept) {
			if !b.allow(m) || !b.takeHeal() {
				continue
			}
			b.workerLeave(m, fmt.Sprintf("workers.%s.count is %d", short, want), 0, m.joinStep)
			kept = slices.DeleteFunc(kept, func(x *member) bool { return x == m })
		}
	}
	// An unattributed worker may be the one that tops this group up.
	hold := len(b.c.unattributed) > 0
	failing := len(g.evidence) > 0
	fill, filled := "", 0
	if n := want - len(kept); n > 0 && hold {
		b.note("Group %s has %d of %d workers in place; the launch waits until the cloud lists the instance of every node that has joined.", name, len(kept), want)
	} else if n > 0 && !failing {
		if filled = b.fill(g, b.liveIn(g)-len(gone), n); filled > 0 {
			fill = b.launch(name, filled, false, fmt.Sprintf("workers.%s.count is %d, %s", short, want, inPlace(len(kept))), 0, gone...)
		}
	}
	// Broken workers leave after the launch that makes up the count.
	why := fmt.Sprintf("the node has been Down for update.downGrace (%s) or longer although its instance runs; it is removed", b.d.Update.DownGrace.Duration)
	if fill != "" {
		why = strings.TrimSuffix(why, "removed") + "replaced"
	}
	for _, m := range g.broken {
		if b.allow(m) && b.takeHeal() {
			b.workerLeave(m, why, 0, fill)
		}
	}
	var replaced map[*member]bool
	if !hold && !failing {
		// The surge left: what the group's live instances (members
		// leaving by a scale-down included) leave of count plus surge.
		free := want + b.surge(name) - (b.liveIn(g) - len(gone)) - filled
		replaced = b.rollWorkers(name, kept, free)
	}
	for _, m := range kept {
		if !replaced[m] && m.node != nil && !m.frozen {
			b.labelDrift(m, m.joinStep)
		}
	}
}

// prune plans the removal of a group no longer in the spec, when
// safety.prune allows it.
func (b *builder) prune(g *groupState) {
	if len(g.kept)+len(g.stale) == 0 {
		return
	}
	if !b.d.Safety.Prune {
		b.note("Group %s is no longer in the spec; its %d owned instance(s) are kept. Set safety.prune: true to remove them.", g.name, len(g.kept)+len(g.stale))
		return
	}
	const why = "the group is no longer in the spec (safety.prune)"
	for _, m := range g.stale {
		if b.takeHeal() {
			b.terminateStale(m, why, "")
		}
	}
	for _, m := range g.kept {
		if m.frozen || !b.allow(m) || !b.takeHeal() {
			continue
		}
		after := m.joinStep
		if m.node == nil {
			after = b.awaitJoinOnly(m)
		}
		b.workerLeave(m, why, 0, after)
	}
}

// rollWorkers plans the rolling replacement of the out-of-date workers of
// kept, in batches of update.parallelism, and returns those it replaces.
// Each batch launches up to free (the surge the group's live instances
// leave) replacements before its victims leave and the rest after them; a
// batch waits for the previous one.
func (b *builder) rollWorkers(name string, kept []*member, free int) map[*member]bool {
	var outdated []*member
	for _, m := range kept {
		if m.outdated && !m.frozen {
			outdated = append(outdated, m)
		}
	}
	var allowed []*member
	for _, m := range pickVictims(outdated, len(outdated), kept) {
		if b.allow(m) && b.takeReplace() {
			allowed = append(allowed, m)
		}
	}
	par := max(1, b.d.Update.Parallelism)
	surge := max(0, min(b.surge(name), free))
	replaced := map[*member]bool{}
	var prev []string // the previous batch's ends
	for start := 0; start < len(allowed); start += par {
		batch := allowed[start:min(start+par, len(allowed))]
		bt := b.nextBatch(name)
		k := min(len(batch), surge)
		after := prev
		if k > 0 {
			after = []string{b.launch(name, k, false, fmt.Sprintf("surge: %d replacement(s) for batch %d of out-of-date workers", k, bt), bt, prev...)}
		}
		var ends []string
		for _, m := range batch {
			ends = append(ends, b.workerLeave(m, "its swarmsync:config is out of date", bt, append(slices.Clone(after), m.joinStep)...))
			replaced[m] = true
		}
		prev = ends
		if rest := len(batch) - k; rest > 0 {
			prev = []string{b.launch(name, rest, false, fmt.Sprintf("%d replacement(s) for batch %d of out-of-date workers", rest, bt), bt, ends...)}
		}
	}
	return replaced
}
