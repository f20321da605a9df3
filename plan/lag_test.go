package plan

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// TestInstanceNotListedYet covers the cloud's eventual consistency: a node
// that is not Down and names an instance the cloud does not list is a
// member whose instance is not shown yet. It counts toward its group and
// is left alone; only a Down node whose instance is not listed is removed.
func TestInstanceNotListedYet(t *testing.T) {
	// nodeOf returns the index of the node that names instance id.
	nodeOf := func(o Observed, id string) int {
		return slices.IndexFunc(o.Swarm.Nodes, func(n providers.Node) bool { return n.InstanceID() == id })
	}
	// hide drops instance id from the observation; change edits its node.
	hide := func(o Observed, id string, change func(*providers.Node)) Observed {
		o.Instances = slices.DeleteFunc(slices.Clone(o.Instances), func(in providers.Instance) bool { return in.ID == id })
		o.Swarm.Nodes = slices.Clone(o.Swarm.Nodes)
		if ni := nodeOf(o, id); ni >= 0 && change != nil {
			n := o.Swarm.Nodes[ni]
			n.Labels = maps.Clone(n.Labels)
			change(&n)
			o.Swarm.Nodes[ni] = n
		}
		return o
	}
	unlabel := func(n *providers.Node) { delete(n.Labels, providers.NodeLabelGroup) }
	// In steady(baseSpec()): i-00001, i-00004 and i-00007 are the managers
	// (i-00001's node leads), i-00010 and i-00013 the web workers (i-00013
	// is older).
	const web1, web2, mgr3 = "i-00010", "i-00013", "i-00007"
	for _, tc := range []struct {
		name  string
		spec  func(*schema.Cluster)
		o     func(schema.Cluster) Observed
		want  []stepView
		notes []string // each must appear in a note
	}{
		{
			name:  "Ready worker: counts toward its group, nothing launched, nothing removed",
			o:     func(c schema.Cluster) Observed { return hide(steady(c), web1, nil) },
			notes: []string{"(group workers/web) names instance " + web1 + ", which the cloud does not list yet; waiting"},
		},
		{
			name: "worker in another state than Down (unknown): left alone too",
			o: func(c schema.Cluster) Observed {
				return hide(steady(c), web1, func(n *providers.Node) { n.State = providers.NodeUnknown })
			},
			notes: []string{"which the cloud does not list yet; waiting"},
		},
		{
			name: "Ready manager without a group label: counts toward managers, no launch",
			o: func(c schema.Cluster) Observed {
				return hide(steady(c), mgr3, unlabel)
			},
			notes: []string{"(group managers) names instance " + mgr3},
		},
		{
			name: "Ready manager that is not reachable yet: not demoted",
			o: func(c schema.Cluster) Observed {
				return hide(steady(c), mgr3, func(n *providers.Node) { n.Reachability = providers.Unreachable })
			},
			notes: []string{"names instance " + mgr3 + ", which the cloud does not list yet"},
		},
		{
			name: "Ready worker without a group label: no worker group launches, even a short one",
			spec: func(c *schema.Cluster) {
				c.Workers["db"] = schema.WorkerGroup{Count: 1, Availability: "active", Instance: schema.Instance{Type: "m5.large", Image: "ami-1"}}
			},
			o: func(c schema.Cluster) Observed {
				c.Workers = map[string]schema.WorkerGroup{"web": c.Workers["web"]}
				return hide(steady(c), web1, unlabel)
			},
			notes: []string{
				"names instance " + web1 + ", which the cloud does not list yet, and has no swarmsync.group label yet; waiting",
				"Group workers/db has 0 of 1 workers in place; the launch waits",
				"Group workers/web has 1 of 2 workers in place; the launch waits",
			},
		},
		{
			name: "Ready worker without a group label: scale-down of what is listed goes on",
			spec: func(c *schema.Cluster) {
				c.Workers["web"] = schema.WorkerGroup{Count: 0, Instance: c.Workers["web"].Instance, Labels: c.Workers["web"].Labels}
				c.Safety.AllowEmpty = true
			},
			o:    func(c schema.Cluster) Observed { return hide(steady(c), web1, unlabel) },
			want: []stepView{{ActionDrain, web2}, {ActionAwaitDrained, web2}, {ActionTerminate, web2}, {ActionRemoveNode, web2}},
		},
		{
			name: "scale-down never picks the member whose instance is not listed",
			spec: func(c *schema.Cluster) {
				c.Workers["web"] = schema.WorkerGroup{Count: 1, Instance: c.Workers["web"].Instance, Labels: c.Workers["web"].Labels}
			},
			o: func(c schema.Cluster) Observed {
				c.Workers = map[string]schema.WorkerGroup{"web": {Count: 2, Instance: c.Workers["web"].Instance, Labels: c.Workers["web"].Labels, Availability: "active"}}
				// web2 is older than web1 and would be picked first.
				return hide(steady(c), web2, nil)
			},
			want: []stepView{{ActionDrain, web1}, {ActionAwaitDrained, web1}, {ActionTerminate, web1}, {ActionRemoveNode, web1}},
		},
		{
			name: "Down worker whose instance is not listed: its instance is gone, the node is removed and replaced",
			o: func(c schema.Cluster) Observed {
				return hide(steady(c), web1, func(n *providers.Node) { n.State = providers.NodeDown })
			},
			want: []stepView{
				{ActionRemoveNode, "n-00012"},
				{ActionLaunch, "workers/web x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionRotateJoinToken, ""},
			},
		},
		{
			name: "Ready worker whose instance is listed as terminated: replaced, and its node removed in the same pass (apply waits until it is Down)",
			o: func(c schema.Cluster) Observed {
				o := steady(c)
				o.Instances = slices.Clone(o.Instances)
				for i := range o.Instances {
					if o.Instances[i].ID == web1 {
						o.Instances[i].State = providers.StateTerminated
					}
				}
				return o
			},
			want: []stepView{
				{ActionRemoveNode, "n-00012"},
				{ActionLaunch, "workers/web x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionRotateJoinToken, ""},
			},
		},
		{
			name: "the other direction: a listed instance whose node is not there yet is awaited, not relaunched",
			o: func(c schema.Cluster) Observed {
				o := steady(c)
				o.Swarm.Nodes = slices.Clone(o.Swarm.Nodes)
				o.Swarm.Nodes = slices.Delete(o.Swarm.Nodes, nodeOf(o, web1), nodeOf(o, web1)+1)
				o.Instances = slices.Clone(o.Instances)
				for i := range o.Instances {
					if o.Instances[i].ID == web1 {
						o.Instances[i].LaunchedAt = o.TakenAt.Add(-time.Minute)
					}
				}
				return o
			},
			want: []stepView{{ActionAwaitJoin, web1}, {ActionLabel, web1}, {ActionRotateJoinToken, ""}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			o := tc.o(baseSpec())
			p, err := Compute(spec, o, Source{})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, view(p)); d != "" {
				t.Errorf("steps (-want +got):\n%s\nnotes: %q", d, p.Notes)
			}
			notes := strings.Join(p.Notes, "\n")
			for _, n := range tc.notes {
				if !strings.Contains(notes, n) {
					t.Errorf("notes %q lack %q", p.Notes, n)
				}
			}
		})
	}
}
