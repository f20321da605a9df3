package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// Undescribed reports whether n has the signature of a node entry no
// engine ever described and nothing labelled (package documentation,
// "Classification").
func Undescribed(n *providers.Node) bool {
	return n.Hostname == "" && len(n.EngineLabels) == 0 && len(n.Labels) == 0 &&
		(n.State == providers.NodeUnknown || n.State == providers.NodeDown)
}

// removeGhosts plans the remove-node of every worker ghost entry the
// removal budget allows, and notes the manager ones and the entries that
// may be joins in progress.
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
	if len(b.c.joining) > 0 {
		ids := make([]string, len(b.c.joining))
		first := b.c.joining[0].CreatedAt
		for i, n := range b.c.joining {
			ids[i] = n.ID
			if n.CreatedAt.Before(first) {
				first = n.CreatedAt
			}
		}
		named := strings.Join(ids, ", ")
		if len(ids) > 5 {
			named = fmt.Sprintf("%s and %d more", strings.Join(ids[:5], ", "), len(ids)-5)
		}
		b.note("%d worker node entr%s no engine has described yet (%s) %s created less than update.joinTimeout (%s) ago: a join in progress is left alone; an entry still undescribed update.joinTimeout after its creation is removed as a join that never completed (the first at %s).",
			len(ids), plural(len(ids), "y", "ies"), named, plural(len(ids), "was", "were"), jt, first.Add(jt).UTC().Format(time.RFC3339))
	}
}

func plural(n int, one, more string) string {
	if n == 1 {
		return one
	}
	return more
}
