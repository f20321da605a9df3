package plan

import (
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// holdDown reports whether m, a member whose node is Down (or a manager
// that is unreachable) while its instance runs, is within update.downGrace
// and must be left alone; when it is, it marks m held and frozen and notes
// since when and until when.
func (b *builder) holdDown(m *member) bool {
	n := m.node
	grace := b.d.Update.DownGrace.Duration
	var why string
	switch {
	case grace <= 0:
		return false
	case n.State != providers.NodeDown:
		why = "is unreachable while its node is not Down and its instance runs; it is left alone and replaced once it has been Down for update.downGrace (" + grace.String() + ")"
	case n.DownSince.IsZero():
		why = "is Down since a time the observation does not record while its instance runs; it is left alone (observe again with a provider that records it)"
	case b.now.Sub(n.DownSince) >= grace:
		return false
	default:
		why = "is Down since " + stamp(n.DownSince) + " while its instance runs; it is left alone for update.downGrace (" + grace.String() + ") and replaced at " + stamp(n.DownSince.Add(grace)) + " if it is still Down"
	}
	m.held, m.frozen = true, true
	h := HeldNode{Node: n.ID, Instance: m.inst.ID, Group: m.group}
	if n.State == providers.NodeDown && !n.DownSince.IsZero() {
		h.DownSince, h.ReplaceAt = n.DownSince.UTC(), n.DownSince.Add(grace).UTC()
	}
	b.downHeld = append(b.downHeld, h)
	b.note("Node %s (group %s, instance %s) %s.", n.ID, m.group, m.inst.ID, why)
	return true
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
