package plan

import (
	"fmt"
	"slices"
	"time"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

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
		Config: b.digest(group), Reason: reason, DependsOn: append(slices.Clone(after), b.networkReady), Batch: batch}, n)
	what := "the new node"
	if count > 1 {
		what = fmt.Sprintf("the %d new nodes", count)
	}
	join := b.add(Step{Action: ActionAwaitJoin, Group: group, LaunchStep: launch, Batch: batch,
		Reason: fmt.Sprintf("wait until %s joined (bounded by update.joinTimeout)", what), DependsOn: []string{launch}}, n)
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
	labels, avail := wanted(b.d, group)
	label := b.add(Step{Action: ActionLabel, Group: group, LaunchStep: launch, Labels: labels, Availability: avail, Batch: batch,
		Reason: "write the spec's labels and availability on " + what, DependsOn: []string{join}}, n)
	return b.registerLaunched(group, launch, label, n, batch)
}

// awaitPending plans await-join → label for an instance launched earlier
// whose node has not joined yet, and returns the label step id. Later steps
// on the member (a drain, if it must leave) wait for the label, so they
// never race with it.
func (b *builder) awaitPending(m *member, after string) string {
	id := m.inst.ID
	join := b.add(Step{Action: ActionAwaitJoin, Group: m.group, Instance: id, DependsOn: []string{after},
		Reason: fmt.Sprintf("the instance was launched %s ago and its node has not joined yet (update.joinTimeout %s)", b.now.Sub(m.inst.LaunchedAt).Round(time.Second), b.d.Update.JoinTimeout.Duration)}, id)
	b.joins = append(b.joins, join)
	if m.group == schema.ManagersGroup {
		m.joiningManager = true
		b.managerJoined = true
		b.members++
		b.reach++
	} else {
		b.workerJoined = true
	}
	labels, avail := wanted(b.d, m.group)
	m.joinStep = b.add(Step{Action: ActionLabel, Group: m.group, Instance: id, Labels: labels, Availability: avail,
		Reason: "write the spec's labels and availability on the new node", DependsOn: []string{join}}, id)
	return m.joinStep
}

// awaitJoinOnly plans the await-join of a pending instance that is about
// to leave (no label needed) and returns its id.
func (b *builder) awaitJoinOnly(m *member) string {
	join := b.add(Step{Action: ActionAwaitJoin, Group: m.group, Instance: m.inst.ID,
		Reason: "its node is joining; it leaves once joined"}, m.inst.ID)
	b.joins = append(b.joins, join)
	b.workerJoined = true
	m.joinStep = join
	return join
}
