package plan

import (
	"fmt"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// undescribed reports whether n has the signature of a node entry no
// engine ever described and nothing labelled (package documentation,
// "Classification").
func undescribed(n *providers.Node) bool {
	return n.Hostname == "" && len(n.EngineLabels) == 0 && len(n.Labels) == 0 &&
		(n.State == providers.NodeUnknown || n.State == providers.NodeDown)
}

// isGhost reports whether n is a ghost entry at now: undescribed, and
// created at a known time at least joinTimeout before now.
func isGhost(n *providers.Node, joinTimeout time.Duration, now time.Time) bool {
	return undescribed(n) && !n.CreatedAt.IsZero() && !n.CreatedAt.Add(joinTimeout).After(now)
}

// removeGhosts plans the remove-node of every worker ghost entry the
// removal budget allows, and notes the manager ones.
func (b *builder) removeGhosts() {
	jt := b.d.Update.JoinTimeout.Duration
	for _, n := range b.c.ghosts {
		if !b.takeHeal() {
			continue
		}
		b.add(Step{Action: ActionRemoveNode, Node: n.ID, Removal: true, Ghost: true,
			Reason: fmt.Sprintf("a join that never completed: no engine ever described this node (state %s, no hostname) since %s, older than update.joinTimeout (%s); it never ran a task, so it is not drained",
				n.State, n.CreatedAt.UTC().Format(time.RFC3339), jt)}, n.ID)
	}
	for _, n := range b.c.ghostManagers {
		b.note("Node %s is a manager entry no engine ever described (state %s, no hostname, no labels) since %s, older than update.joinTimeout (%s): a manager join that never completed. swarmsync does not remove it, since it may be a raft member; check that no machine runs it (docker node inspect %s), then run `docker node demote %s` and `docker node rm %s` by hand.",
			n.ID, n.State, n.CreatedAt.UTC().Format(time.RFC3339), jt, n.ID, n.ID, n.ID)
	}
}
