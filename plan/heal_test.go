package plan

import (
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
	// down marks the first n web nodes Down, their instances launched ago.
	down := func(o Observed, n int, ago time.Duration) Observed {
		ids := map[string]bool{}
		for i := range o.Swarm.Nodes {
			nd := &o.Swarm.Nodes[i]
			if n > 0 && nd.Labels[providers.NodeLabelGroup] == "workers/web" {
				nd.State = providers.NodeDown
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
			name: "Down within joinTimeout of its launch: given time",
			o:    func(c schema.Cluster) Observed { return down(steady(c), 1, 5*time.Minute) },
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
				{ActionLaunch, "workers/web x2 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
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
