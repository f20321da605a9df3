package plan

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
)

// TestGhostEntries: a node entry no engine ever described (a join that
// never completed) is removed once it is older than update.joinTimeout,
// without drain, counted against safety.maxRemovalsPerApply; anything that
// shows an engine described it, swarmsync labelled it, a join may still be
// in progress, or it is a manager, leaves it alone.
func TestGhostEntries(t *testing.T) {
	ghost := func(id string, mod func(*providers.Node)) providers.Node {
		n := providers.Node{ID: id, Role: providers.RoleWorker, Availability: providers.AvailabilityActive,
			State: providers.NodeUnknown, CreatedAt: t0.Add(-time.Hour)}
		if mod != nil {
			mod(&n)
		}
		return n
	}
	young := func(min int) func(*providers.Node) {
		return func(n *providers.Node) { n.CreatedAt = t0.Add(-time.Duration(min) * time.Minute) }
	}
	for _, tc := range []struct {
		name    string
		limit   int // safety.maxRemovalsPerApply (5 when 0)
		nodes   []providers.Node
		removed []string
		note    string // a note that must be there
		foreign int    // nodes counted as not owned (in the note)
	}{
		{name: "state unknown, an hour old: removed", nodes: []providers.Node{ghost("g1", nil)}, removed: []string{"g1"}},
		{name: "state down (marked after a leader change): removed",
			nodes:   []providers.Node{ghost("g1", func(n *providers.Node) { n.State, n.DownSince = providers.NodeDown, t0.Add(-time.Minute) })},
			removed: []string{"g1"}},
		{name: "created exactly update.joinTimeout ago: removed",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.CreatedAt = t0.Add(-10 * time.Minute) })}, removed: []string{"g1"}},
		{name: "younger than update.joinTimeout: a join in progress, left",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.CreatedAt = t0.Add(-10*time.Minute + time.Second) })},
			note:  "1 worker node entry no engine has described yet (g1) was created less than update.joinTimeout (10m0s) ago: a join in progress is left alone; an entry still undescribed update.joinTimeout after its creation is removed as a join that never completed (the first at 2026-05-01T12:00:01Z)."},
		{name: "seven younger than update.joinTimeout: named up to five",
			nodes: []providers.Node{ghost("g1", young(9)), ghost("g2", young(8)), ghost("g3", young(7)), ghost("g4", young(6)), ghost("g5", young(5)), ghost("g6", young(4)), ghost("g7", young(3))},
			note:  "7 worker node entries no engine has described yet (g1, g2, g3, g4, g5 and 2 more) were created less than update.joinTimeout (10m0s) ago: a join in progress is left alone; an entry still undescribed update.joinTimeout after its creation is removed as a join that never completed (the first at 2026-05-01T12:01:00Z)."},
		{name: "a manager younger than update.joinTimeout: left, not owned",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.Role, n.CreatedAt = providers.RoleManager, t0.Add(-time.Minute) })}, foreign: 1},
		{name: "creation time unknown: left",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.CreatedAt = time.Time{} })}, foreign: 1},
		{name: "a hostname (an engine described it): left",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.Hostname = "h1" })}, foreign: 1},
		{name: "an engine label that is not ours: left",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.EngineLabels = map[string]string{"zone": "a"} })}, foreign: 1},
		{name: "a node label: left",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.Labels = map[string]string{"team": "x"} })}, foreign: 1},
		{name: "disconnected (it registered once): left",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.State = providers.NodeDisconnected })}, foreign: 1},
		{name: "Ready: left",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.State = providers.NodeReady })}, foreign: 1},
		{name: "a manager: noted, never removed",
			nodes: []providers.Node{ghost("g1", func(n *providers.Node) { n.Role = providers.RoleManager })},
			note:  "Node g1 is a manager entry no engine ever described (state unknown, no hostname, no labels) since 2026-05-01T11:00:00Z, older than update.joinTimeout (10m0s): a manager join that never completed. swarmsync does not remove it, since it may be a raft member; check that no machine runs it (docker node inspect g1), then run `docker node demote g1` and `docker node rm g1` by hand."},
		{name: "more than safety.maxRemovalsPerApply: the rest in a later pass", limit: 2,
			nodes:   []providers.Node{ghost("g1", nil), ghost("g2", nil), ghost("g3", nil)},
			removed: []string{"g1", "g2"}, note: "1 removal(s) are left for a later pass: safety.maxRemovalsPerApply (2) is reached in this one."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			if tc.limit > 0 {
				spec.Safety.MaxRemovalsPerApply = tc.limit
			}
			o := steady(spec)
			o.Swarm.Nodes = append(o.Swarm.Nodes, tc.nodes...)
			p, err := Compute(spec, o, Source{})
			if err != nil {
				t.Fatal(err)
			}
			var removed []string
			for _, s := range p.Steps {
				if s.Action != ActionRemoveNode || !strings.HasPrefix(s.Node, "g") {
					t.Fatalf("unexpected step %+v", s)
				}
				i := slices.IndexFunc(tc.nodes, func(n providers.Node) bool { return n.ID == s.Node })
				n := tc.nodes[i]
				want := Step{ID: "remove-node-" + n.ID, Action: ActionRemoveNode, Node: n.ID, Removal: true, Ghost: true,
					Reason: "a join that never completed: no engine ever described this node (state " + string(n.State) + ", no hostname) since " +
						n.CreatedAt.Format(time.RFC3339) + ", older than update.joinTimeout (10m0s); it never ran a task, so it is not drained"}
				if d := cmp.Diff(want, s); d != "" {
					t.Errorf("step (-want +got):\n%s", d)
				}
				removed = append(removed, s.Node)
			}
			if d := cmp.Diff(tc.removed, removed); d != "" {
				t.Errorf("removed (-want +got):\n%s", d)
			}
			if tc.note != "" && !slices.Contains(p.Notes, tc.note) {
				t.Errorf("no note %q in %q", tc.note, p.Notes)
			}
			if tc.foreign > 0 && !slices.ContainsFunc(p.Notes, func(n string) bool {
				return strings.HasPrefix(n, "1 node(s) (") && strings.Contains(n, "are not owned by swarmsync")
			}) {
				t.Errorf("the node is not counted as not owned: %q", p.Notes)
			}
			if tc.foreign == 0 && slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "not owned by swarmsync") }) {
				t.Errorf("an entry no engine described is counted as not owned: %q", p.Notes)
			}
		})
	}
}

// TestGhostReserved: ghost entries are reserved from the removal budget
// like orphans, so a rolling replacement does not take what they need.
func TestGhostReserved(t *testing.T) {
	spec := baseSpec()
	spec.Safety.MaxRemovalsPerApply = 1
	o := steady(spec)
	for i := range o.Instances {
		if o.Instances[i].Group == "workers/web" {
			o.Instances[i].Config = "old-config"
		}
	}
	o.Swarm.Nodes = append(o.Swarm.Nodes, providers.Node{ID: "g1", Role: providers.RoleWorker, Availability: providers.AvailabilityActive,
		State: providers.NodeUnknown, CreatedAt: t0.Add(-time.Hour)})
	p, err := Compute(spec, o, Source{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]stepView{{ActionRemoveNode, "g1"}}, view(p)); d != "" {
		t.Errorf("steps (-want +got):\n%s", d)
	}
	if !slices.Contains(p.Notes, "2 out-of-date member(s) will be replaced in later passes: safety.maxRemovalsPerApply (1) is reached in this one.") {
		t.Errorf("no note defers the replacements: %q", p.Notes)
	}
}
