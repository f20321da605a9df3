package plan

import (
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// member is one machine of the cluster as the planner sees it: an owned
// instance with its node, an owned instance whose node has not joined, or a
// node whose instance is gone or not listed yet.
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
	// frozen members count toward their group but no step of the pass
	// touches them: a node whose instance the cloud does not list yet, a
	// stray manager that cannot be demoted yet.
	frozen bool
	// held marks a member whose node is Down (or, for a manager,
	// unreachable) while its instance runs, within update.downGrace: it
	// is frozen, counts toward its group and may only go by a scale-down.
	held bool
	// stale marks an instance whose node never joined within joinTimeout.
	stale bool
	// gone marks a worker node that is not Down although the cloud lists
	// the instance its engine label names as terminated.
	gone bool
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
