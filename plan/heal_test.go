package plan

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// TestDownWorkerReplaced: a worker whose node is Down while its instance
// runs is replaced once the instance is older than update.joinTimeout:
// the launch that makes up the count first, then terminate and
// remove-node, within safety.maxRemovalsPerApply.
func TestDownWorkerReplaced(t *testing.T) {
	// down marks the first n web nodes Down for ago, their instances
	// launched ago.
	down := func(o Observed, n int, ago time.Duration) Observed {
		ids := map[string]bool{}
		for i := range o.Swarm.Nodes {
			nd := &o.Swarm.Nodes[i]
			if n > 0 && nd.Labels[providers.NodeLabelGroup] == "workers/web" {
				nd.State = providers.NodeDown
				nd.DownSince = t0.Add(-ago)
				ids[nd.InstanceID()] = true
				n--
			}
		}
		for i := range o.Instances {
			if ids[o.Instances[i].ID] {
				o.Instances[i].LaunchedAt = t0.Add(-ago)
			}
		}
		return o
	}
	for _, tc := range []struct {
		name  string
		count int // web count in the spec
		limit int // safety.maxRemovalsPerApply
		o     func(schema.Cluster) Observed
		want  []stepView
		deps  map[string][]string
		note  string
	}{
		{
			name: "replaced: launch first, then terminate and remove",
			o:    func(c schema.Cluster) Observed { return down(steady(c), 1, time.Hour) },
			want: []stepView{
				{ActionLaunch, "workers/web x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionTerminate, "i-00010"}, {ActionRemoveNode, "i-00010"},
				{ActionRotateJoinToken, ""},
			},
			deps: map[string][]string{
				"terminate-workers-web-i-00010":   {"label-workers-web-1"},
				"remove-node-workers-web-i-00010": {"terminate-workers-web-i-00010"},
			},
		},
		{
			name: "Down for less than update.downGrace: left alone",
			o:    func(c schema.Cluster) Observed { return down(steady(c), 1, 4*time.Minute) },
			note: "left alone for update.downGrace (5m0s) and replaced at 2026-05-01T12:01:00Z if it is still Down",
		},
		{
			name: "Down since a time the observation does not record: left alone",
			o: func(c schema.Cluster) Observed {
				o := down(steady(c), 1, time.Hour)
				for i := range o.Swarm.Nodes {
					o.Swarm.Nodes[i].DownSince = time.Time{}
				}
				return o
			},
			note: "Down since a time the observation does not record",
		},
		{
			name: "Down for exactly update.downGrace: replaced",
			o:    func(c schema.Cluster) Observed { return down(steady(c), 1, 5*time.Minute) },
			want: []stepView{
				{ActionLaunch, "workers/web x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionTerminate, "i-00010"}, {ActionRemoveNode, "i-00010"},
				{ActionRotateJoinToken, ""},
			},
		},
		{
			name:  "more than the spec wants: removed, not replaced",
			count: 1,
			o: func(c schema.Cluster) Observed {
				c.Workers = map[string]schema.WorkerGroup{"web": {Count: 2, Instance: c.Workers["web"].Instance, Labels: c.Workers["web"].Labels, Availability: "active"}}
				return down(steady(c), 1, time.Hour)
			},
			want: []stepView{{ActionTerminate, "i-00010"}, {ActionRemoveNode, "i-00010"}},
		},
		{
			name:  "bounded by safety.maxRemovalsPerApply",
			limit: 1,
			o:     func(c schema.Cluster) Observed { return down(steady(c), 2, time.Hour) },
			want: []stepView{
				{ActionLaunch, "workers/web x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""}, // within count plus surge
				{ActionTerminate, "i-00010"}, {ActionRemoveNode, "i-00010"},
				{ActionRotateJoinToken, ""},
			},
			note: "1 removal(s) are left for a later pass",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			if tc.count > 0 {
				spec.Workers = map[string]schema.WorkerGroup{"web": {Count: tc.count, Instance: spec.Workers["web"].Instance, Labels: spec.Workers["web"].Labels, Availability: "active"}}
			}
			if tc.limit > 0 {
				spec.Safety.MaxRemovalsPerApply = tc.limit
			}
			p, err := Compute(spec, tc.o(spec), Source{})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, view(p)); d != "" {
				t.Errorf("steps (-want +got):\n%s", d)
			}
			for id, want := range tc.deps {
				var got []string
				for _, s := range p.Steps {
					if s.ID == id {
						got = s.DependsOn
					}
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("%s depends on (-want +got):\n%s", id, d)
				}
			}
			if tc.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", p.Notes, tc.note)
			}
		})
	}
}

// TestReadyNodeOfTerminatedInstance: a worker node that is still Ready
// although the cloud lists its instance as terminated (a pass stopped
// between terminate and remove-node, or the instance was terminated by
// hand) is removed in the same pass: the instance is known gone, and
// apply's remove-node waits until the Swarm sees the node Down. It counts
// against safety.maxRemovalsPerApply and is not held back outside a
// disruption window. What cannot be removed yet still waits, with a note:
// a reachable manager (it needs a demotion), and a node whose instance the
// cloud does not list at all (eventual consistency).
func TestReadyNodeOfTerminatedInstance(t *testing.T) {
	// terminate marks the instances of the first n nodes of group as
	// terminated (their nodes stay Ready) and returns their node ids.
	terminate := func(o *Observed, group string, n int) []string {
		var ids []string
		gone := map[string]bool{}
		for _, nd := range o.Swarm.Nodes {
			if n > 0 && nd.Labels[providers.NodeLabelGroup] == group && !nd.Leader {
				gone[nd.InstanceID()] = true
				ids = append(ids, nd.ID)
				n--
			}
		}
		o.Instances = slices.Clone(o.Instances)
		for i := range o.Instances {
			if gone[o.Instances[i].ID] {
				o.Instances[i].State = providers.StateTerminated
			}
		}
		return ids
	}
	type want struct {
		removed int    // remove-node steps of the terminated instances' nodes
		launch  bool   // a launch makes up the count
		note    string // a note fragment
	}
	for _, tc := range []struct {
		name  string
		spec  func(*schema.Cluster)
		o     func(*Observed) []string
		want  want
		check func(t *testing.T, p *Plan, nodes []string)
	}{
		{
			name: "removed without waiting for a later pass, and replaced",
			o:    func(o *Observed) []string { return terminate(o, "workers/web", 1) },
			want: want{removed: 1, launch: true},
			check: func(t *testing.T, p *Plan, nodes []string) {
				for _, s := range p.Steps {
					if s.Action == ActionRemoveNode && s.Node == nodes[0] {
						if !s.Removal || s.Instance != "" || !strings.Contains(s.Reason, "its instance is terminated: the node is removed once the Swarm sees it Down") || len(s.DependsOn) != 0 {
							t.Errorf("remove-node step %+v: want a removal of the node alone, waiting for nothing", s)
						}
					}
				}
				if len(p.Notes) != 0 {
					t.Errorf("notes %q, want none", p.Notes)
				}
			},
		},
		{
			name: "a shutting-down instance is gone too",
			o: func(o *Observed) []string {
				ids := terminate(o, "workers/web", 1)
				for i := range o.Instances {
					if o.Instances[i].State == providers.StateTerminated {
						o.Instances[i].State = providers.StateShuttingDown
					}
				}
				return ids
			},
			want: want{removed: 1, launch: true},
		},
		{
			name: "without the group label: the instance's group",
			o: func(o *Observed) []string {
				ids := terminate(o, "workers/web", 1)
				o.Swarm.Nodes = slices.Clone(o.Swarm.Nodes)
				for i := range o.Swarm.Nodes {
					if o.Swarm.Nodes[i].ID == ids[0] {
						o.Swarm.Nodes[i].Labels = nil
					}
				}
				return ids
			},
			want: want{removed: 1, launch: true},
			check: func(t *testing.T, p *Plan, nodes []string) {
				for _, s := range p.Steps {
					if s.Action == ActionRemoveNode && s.Group != "workers/web" {
						t.Errorf("remove-node of group %q, want workers/web", s.Group)
					}
				}
			},
		},
		{
			name: "bounded by safety.maxRemovalsPerApply",
			spec: func(c *schema.Cluster) { c.Safety.MaxRemovalsPerApply = 1 },
			o:    func(o *Observed) []string { return terminate(o, "workers/web", 2) },
			want: want{removed: 1, launch: true, note: "1 removal(s) are left for a later pass"},
		},
		{
			name: "outside a disruption window: removed all the same (its machine is gone)",
			spec: func(c *schema.Cluster) {
				c.Schedule.DisruptionWindows = []schema.Window{{Cron: "0 2 * * SAT", Duration: schema.Duration{Duration: 4 * time.Hour}}}
			},
			o:    func(o *Observed) []string { return terminate(o, "workers/web", 1) },
			want: want{removed: 1, launch: true},
		},
		{
			name: "a reachable manager waits until it is unreachable (removing it needs a demotion)",
			o:    func(o *Observed) []string { return terminate(o, schema.ManagersGroup, 1) },
			want: want{launch: true, note: "but its instance is gone; it is removed once it is Down"},
		},
		{
			name: "an instance the cloud does not list at all is waited for, not removed",
			o: func(o *Observed) []string {
				ids := terminate(o, "workers/web", 1)
				o.Instances = slices.DeleteFunc(o.Instances, func(in providers.Instance) bool { return in.State == providers.StateTerminated })
				return ids
			},
			want: want{note: "which the cloud does not list yet; waiting"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			o := steady(spec)
			nodes := tc.o(&o)
			p, err := Compute(spec, o, Source{})
			if err != nil {
				t.Fatal(err)
			}
			got := want{note: tc.want.note}
			for _, s := range p.Steps {
				switch {
				case s.Action == ActionRemoveNode && slices.Contains(nodes, s.Node):
					got.removed++
				case s.Action == ActionLaunch:
					got.launch = true
				}
			}
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); d != "" {
				t.Errorf("plan (-want +got):\n%s\nsteps %v, notes %q", d, view(p), p.Notes)
			}
			if tc.want.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.want.note) {
				t.Errorf("notes %q lack %q", p.Notes, tc.want.note)
			}
			if tc.check != nil {
				tc.check(t, p, nodes)
			}
		})
	}
}
