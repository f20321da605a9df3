package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// TestDownGrace: a manager that is Down or unreachable while its instance
// runs is left alone for update.downGrace (a reboot, a dockerd restart),
// then replaced exactly as before; what the cloud says is gone gets no
// grace; a stale leader flag on a Down node does not make it the leader.
func TestDownGrace(t *testing.T) {
	downFor := func(d time.Duration) func(*Observed, *schema.Cluster) {
		return func(o *Observed, _ *schema.Cluster) {
			n := follower(o)
			n.State, n.Reachability, n.DownSince = providers.NodeDown, providers.Unreachable, t0.Add(-d)
		}
	}
	leaveAndReplace := []stepView{
		{ActionDemote, "FI"}, {ActionRemoveNode, "FI"}, {ActionTerminate, "FI"},
		{ActionLaunch, "managers x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
		{ActionRotateJoinToken, ""},
	}
	for _, tc := range []struct {
		name   string
		change func(*Observed, *schema.Cluster)
		want   []stepView
		held   []HeldNode
		note   string
	}{
		{
			name:   "Down for 2m of 5m: left alone",
			change: downFor(2 * time.Minute),
			held:   []HeldNode{{Node: "FN", Instance: "FI", Group: "managers", DownSince: t0.Add(-2 * time.Minute), ReplaceAt: t0.Add(3 * time.Minute)}},
			note:   "Node FN (group managers, instance FI) is Down since 2026-05-01T11:58:00Z while its instance runs; it is left alone for update.downGrace (5m0s) and replaced at 2026-05-01T12:03:00Z if it is still Down.",
		},
		{
			name:   "Down for 5m: replaced",
			change: downFor(5 * time.Minute),
			want:   leaveAndReplace,
		},
		{
			name: "unreachable while Ready: left alone",
			change: func(o *Observed, _ *schema.Cluster) {
				follower(o).Reachability = providers.Unreachable
			},
			held: []HeldNode{{Node: "FN", Instance: "FI", Group: "managers"}},
			note: "is unreachable while its node is not Down",
		},
		{
			name: "update.downGrace 0: replaced at once",
			change: func(o *Observed, c *schema.Cluster) {
				downFor(time.Second)(o, c)
				c.Update.DownGrace = schema.Duration{}
			},
			want: leaveAndReplace,
		},
		{
			name: "instance terminated: no grace",
			change: func(o *Observed, c *schema.Cluster) {
				downFor(time.Second)(o, c)
				for i := range o.Instances {
					if o.Instances[i].ID == follower(o).InstanceID() {
						o.Instances[i].State = providers.StateTerminated
					}
				}
			},
			want: []stepView{
				{ActionDemote, "FN"}, {ActionRemoveNode, "FN"},
				{ActionLaunch, "managers x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionRotateJoinToken, ""},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			o := steady(spec)
			f := follower(&o)
			fix := strings.NewReplacer("FI", f.InstanceID(), "FN", f.ID)
			for i := range tc.want {
				tc.want[i].Target = fix.Replace(tc.want[i].Target)
			}
			for i := range tc.held {
				tc.held[i].Node, tc.held[i].Instance = fix.Replace(tc.held[i].Node), fix.Replace(tc.held[i].Instance)
			}
			tc.note = fix.Replace(tc.note)
			tc.change(&o, &spec)
			p, err := Compute(spec, o, Source{})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, view(p)); d != "" {
				t.Errorf("steps (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.held, p.Held); d != "" {
				t.Errorf("held (-want +got):\n%s", d)
			}
			if tc.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", p.Notes, tc.note)
			}
		})
	}
}

// TestStaleLeaderFlag: a Down manager that still carries the leader flag
// it had before it went Down is not the leader: the reachable leader is
// still replaced last, and the Down one goes first.
func TestStaleLeaderFlag(t *testing.T) {
	spec := baseSpec()
	o := steady(spec)
	spec.Managers.Instance.Image = "ami-2" // every manager is out of date
	var leader, leaderInst string
	for _, n := range o.Swarm.Nodes {
		if n.Leader {
			leader, leaderInst = n.ID, n.InstanceID()
		}
	}
	f := follower(&o)
	f.State, f.Reachability, f.DownSince, f.Leader = providers.NodeDown, providers.Unreachable, t0.Add(-time.Hour), true
	for _, flip := range []bool{false, true} { // either order of the nodes
		if flip {
			for i, j := 0, len(o.Swarm.Nodes)-1; i < j; i, j = i+1, j-1 {
				o.Swarm.Nodes[i], o.Swarm.Nodes[j] = o.Swarm.Nodes[j], o.Swarm.Nodes[i]
			}
		}
		p, err := Compute(spec, o, Source{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Observation.Leader != leader {
			t.Fatalf("leader %q, want the reachable one %q", p.Observation.Leader, leader)
		}
		// The leader's demotion comes after every step but its own.
		last := -1
		for i, s := range p.Steps {
			if s.Action == ActionDemote && s.Node == leader {
				last = i
			}
		}
		if last < 0 {
			t.Fatalf("the out-of-date leader is not demoted: %v", view(p))
		}
		deps := map[string]bool{}
		var walk func(id string)
		walk = func(id string) {
			for _, s := range p.Steps {
				if s.ID == id {
					for _, d := range s.DependsOn {
						if !deps[d] {
							deps[d] = true
							walk(d)
						}
					}
				}
			}
		}
		walk(p.Steps[last].ID)
		for _, s := range p.Steps {
			if s.ID != p.Steps[last].ID && s.Node != leader && !deps[s.ID] && s.Instance != leaderInst {
				t.Errorf("step %s is not done before the leader's demotion", s.ID)
			}
		}
	}
}

// follower returns the first manager node of o that is not the leader.
func follower(o *Observed) *providers.Node {
	for i := range o.Swarm.Nodes {
		if n := &o.Swarm.Nodes[i]; n.Role == providers.RoleManager && !n.Leader {
			return n
		}
	}
	panic("no follower manager")
}
