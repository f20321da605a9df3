package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

func (b *builder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
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

// foreignNotes explains the nodes and instances swarmsync does not own.
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

// deferredNotes says what the removal budget and the disruption windows
// left for later passes.
func (b *builder) deferredNotes() {
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
}

// inPlace is "1 is in place", "2 are in place" (reasons are read aloud).
func inPlace(n int) string {
	if n == 1 {
		return "1 is in place"
	}
	return fmt.Sprintf("%d are in place", n)
}
