package plan

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/schema"
)

// surge is how many machines beyond its count group may run at once:
// update.maxSurge for a worker group, one for the managers.
func (b *builder) surge(group string) int {
	if group == schema.ManagersGroup {
		return 1
	}
	return max(0, b.d.Update.MaxSurge)
}

// joinFailures decides whether the new machines of declared group g fail
// to join (package documentation, "Failed joins"): some instance of the
// current config never joined within update.joinTimeout and no node of the
// current config joined after the latest of them was launched. Then the
// group stops launching: the newest of those instances (up to its surge,
// at least one) are kept as the evidence, the others are terminated as
// stale instances are.
func (b *builder) joinFailures(g *groupState) {
	want := b.digest(g.name)
	var failed []*member
	var last time.Time
	for _, m := range g.stale {
		if m.inst.Config == want {
			failed = append(failed, m)
			if m.inst.LaunchedAt.After(last) {
				last = m.inst.LaunchedAt
			}
		}
	}
	if len(failed) == 0 {
		return
	}
	for _, m := range g.kept {
		if m.node != nil && m.inst != nil && m.inst.Config == want && m.node.CreatedAt.After(last) {
			return // a machine of this config joined since: joins work
		}
	}
	slices.SortFunc(failed, func(x, y *member) int {
		if c := y.inst.LaunchedAt.Compare(x.inst.LaunchedAt); c != 0 {
			return c
		}
		return cmp.Compare(x.inst.ID, y.inst.ID)
	})
	g.evidence = failed[:min(len(failed), max(1, b.surge(g.name)))]
	g.stale = slices.DeleteFunc(g.stale, func(m *member) bool { return slices.Contains(g.evidence, m) })
	ids := make([]string, len(g.evidence))
	for i, m := range g.evidence {
		ids[i] = m.inst.ID
	}
	b.note("Group %s stops launching: %d instance(s) of its current config never joined within update.joinTimeout (%s) and no node of that config joined since the latest was launched (%s). Kept so that later passes see it: %s. Fix the cause (image, user data, network, security groups) and change the spec, or terminate the kept instance(s) by hand to try again.",
		g.name, len(failed), b.d.Update.JoinTimeout.Duration, stamp(last), strings.Join(ids, ", "))
	b.stopped = append(b.stopped, LaunchStop{Group: g.name, Instances: ids, Since: last.UTC()})
}

// fill returns how many machines group may launch to make up for missing
// ones (of need) when live machines of the group run while it launches,
// and notes when the surge allows fewer: the group's live instances never
// exceed its count plus its surge.
func (b *builder) fill(g *groupState, live, need int) int {
	want, _ := desiredCount(b.d, g.name)
	n := min(need, want+b.surge(g.name)-live)
	if n < need {
		b.note("Group %s launches %d of the %d machine(s) it lacks in this pass: its live instances (%d, some that never joined or are leaving) stay within its count plus its surge (%d); a later pass launches the rest.", g.name, max(0, n), need, live, b.surge(g.name))
	}
	return max(0, n)
}

// liveIn counts the machines of group g that run: its live owned
// instances, whatever their node, and its members whose instance the cloud
// does not list yet.
func (b *builder) liveIn(g *groupState) int {
	n := 0
	for i := range b.o.Instances {
		if in := &b.o.Instances[i]; in.Group == g.name && in.State.Live() {
			n++
		}
	}
	for _, m := range g.kept {
		if m.inst == nil {
			n++
		}
	}
	return n
}

// LaunchStop is a group that stops launching because its new machines do
// not join (package documentation, "Failed joins").
type LaunchStop struct {
	Group string `json:"group"`
	// Instances are the instances kept as the evidence.
	Instances []string `json:"instances"`
	// Since is when the latest of the instances that never joined was
	// launched.
	Since time.Time `json:"since"`
}
