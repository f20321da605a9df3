package plan

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// TestClusterHealth sets observations against baseSpec (3 managers, 2 web
// workers) and compares the whole report.
func TestClusterHealth(t *testing.T) {
	node := func(o *Observed, id string) *providers.Node {
		for i := range o.Swarm.Nodes {
			if o.Swarm.Nodes[i].ID == id {
				return &o.Swarm.Nodes[i]
			}
		}
		t.Fatalf("no node %s", id)
		return nil
	}
	inst := func(o *Observed, id string) *providers.Instance {
		for i := range o.Instances {
			if o.Instances[i].ID == id {
				return &o.Instances[i]
			}
		}
		t.Fatalf("no instance %s", id)
		return nil
	}
	dropNode := func(o *Observed, id string) {
		nodes := o.Swarm.Nodes[:0:0]
		for _, n := range o.Swarm.Nodes {
			if n.ID != id {
				nodes = append(nodes, n)
			}
		}
		o.Swarm.Nodes = nodes
	}
	unreachable := func(o *Observed, id string) {
		n := node(o, id)
		n.Reachability, n.State = providers.Unreachable, providers.NodeDown
	}
	group := func(name string, desired, instances, ready, down int) GroupHealth {
		return GroupHealth{Name: name, Declared: true, Desired: desired, Instances: instances, Ready: ready, Down: down,
			OutOfDate: []string{}, InstancesWithoutNode: []InstanceRef{}, NodesWithoutInstance: []NodeRef{}}
	}
	// base is the health of steady(baseSpec()).
	base := func() Health {
		return Health{
			Swarm: SwarmHealth{
				Active:   true,
				Leader:   &NodeRef{ID: "n-00003", Hostname: "h-n-00003", Addr: "10.0.0.2:2377", Role: providers.RoleManager, State: providers.NodeReady, Instance: "i-00001"},
				Managers: 3, Reachable: 3, Quorum: 2, State: QuorumHealthy, Nodes: 5, Ready: 5,
			},
			Groups: []GroupHealth{group("managers", 3, 3, 3, 0), group("workers/web", 2, 2, 2, 0)},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*Observed)
		want   func(*Health)
		atRisk bool
	}{
		{name: "in shape"},
		{
			name:   "one manager unreachable: degraded",
			change: func(o *Observed) { unreachable(o, "n-00006") },
			want: func(h *Health) {
				h.Swarm.Reachable, h.Swarm.State, h.Swarm.Ready = 2, QuorumDegraded, 4
				h.Groups[0].Ready, h.Groups[0].Down = 2, 1
			},
			atRisk: true,
		},
		{
			name:   "two managers unreachable: quorum lost",
			change: func(o *Observed) { unreachable(o, "n-00006"); unreachable(o, "n-00009") },
			want: func(h *Health) {
				h.Swarm.Reachable, h.Swarm.State, h.Swarm.Ready = 1, QuorumLost, 3
				h.Groups[0].Ready, h.Groups[0].Down = 1, 2
			},
			atRisk: true,
		},
		{
			name: "a manager Ready but unreachable counts as unreachable",
			change: func(o *Observed) {
				node(o, "n-00006").Reachability = providers.Unreachable
			},
			want:   func(h *Health) { h.Swarm.Reachable, h.Swarm.State = 2, QuorumDegraded },
			atRisk: true,
		},
		{
			name: "no swarm, nothing launched",
			change: func(o *Observed) {
				o.Instances, o.Swarm = nil, providers.SwarmState{}
			},
			want: func(h *Health) {
				h.Swarm = SwarmHealth{State: QuorumNone}
				h.Groups = []GroupHealth{group("managers", 3, 0, 0, 0), group("workers/web", 2, 0, 0, 0)}
			},
		},
		{
			name:   "an instance whose node has not joined",
			change: func(o *Observed) { dropNode(o, "n-00015") },
			want: func(h *Health) {
				h.Swarm.Nodes, h.Swarm.Ready = 4, 4
				h.Groups[1].Ready = 1
				h.Groups[1].InstancesWithoutNode = []InstanceRef{{ID: "i-00013", State: providers.StateRunning, PrivateIP: "10.0.0.14",
					LaunchedAt: time.Date(2026, 4, 27, 7, 0, 0, 0, time.UTC), Age: "4d"}}
			},
		},
		{
			name: "a node whose instance is terminated",
			change: func(o *Observed) {
				inst(o, "i-00010").State = providers.StateTerminated
				node(o, "n-00012").State = providers.NodeDown
			},
			want: func(h *Health) {
				h.Swarm.Ready = 4
				h.Groups[1].Instances, h.Groups[1].Ready, h.Groups[1].Down = 1, 1, 1
				h.Groups[1].NodesWithoutInstance = []NodeRef{{ID: "n-00012", Hostname: "h-n-00012", Addr: "10.0.0.11", Role: providers.RoleWorker, State: providers.NodeDown, Instance: "i-00010"}}
			},
		},
		{
			name:   "an out-of-date instance",
			change: func(o *Observed) { inst(o, "i-00010").Config = "old" },
			want:   func(h *Health) { h.Groups[1].OutOfDate = []string{"i-00010"} },
		},
		{
			name: "a node without the engine label is matched by address",
			change: func(o *Observed) {
				n := node(o, "n-00012")
				n.EngineLabels, n.Labels = nil, nil
			},
		},
		{
			name: "a node swarmsync does not own",
			change: func(o *Observed) {
				o.Swarm.Nodes = append(o.Swarm.Nodes, providers.Node{ID: "n-x", Role: providers.RoleWorker, State: providers.NodeReady, Addr: "10.9.9.9"})
			},
			want: func(h *Health) { h.ForeignNodes, h.Swarm.Nodes, h.Swarm.Ready = 1, 6, 6 },
		},
		{
			name: "entries no engine has described: counted apart from the nodes not owned",
			change: func(o *Observed) {
				o.Swarm.Nodes = append(o.Swarm.Nodes,
					providers.Node{ID: "n-g1", Role: providers.RoleWorker, State: providers.NodeUnknown, CreatedAt: t0.Add(-time.Hour)},
					providers.Node{ID: "n-g2", Role: providers.RoleWorker, State: providers.NodeDown, CreatedAt: t0.Add(-time.Minute)},
					providers.Node{ID: "n-g3", Role: providers.RoleManager, State: providers.NodeUnknown, CreatedAt: t0.Add(-time.Hour)})
			},
			want: func(h *Health) {
				h.GhostNodes, h.Swarm.Nodes, h.Swarm.Managers, h.Swarm.Quorum, h.Swarm.State = 3, 8, 4, 3, QuorumDegraded
			},
			atRisk: true, // the manager entry counts in the raft membership
		},
		{
			name: "an unowned instance's node",
			change: func(o *Observed) {
				o.Unowned = []providers.Instance{{ID: "i-u", State: providers.StateRunning, PrivateIP: "10.9.9.9"}}
				o.Swarm.Nodes = append(o.Swarm.Nodes, providers.Node{ID: "n-u", Role: providers.RoleWorker, State: providers.NodeReady, Addr: "10.9.9.9",
					Labels: map[string]string{providers.NodeLabelGroup: "workers/web"}})
			},
			want: func(h *Health) { h.ForeignNodes, h.UnownedInstances, h.Swarm.Nodes, h.Swarm.Ready = 1, 1, 6, 6 },
		},
		{
			name: "a group no longer in the spec, and a node of no known group",
			change: func(o *Observed) {
				o.Instances = append(o.Instances, providers.Instance{ID: "i-b1", Cluster: "prod", Group: "workers/batch", State: providers.StateRunning, PrivateIP: "10.0.1.1", LaunchedAt: t0.Add(-90 * time.Second)})
				o.Swarm.Nodes = append(o.Swarm.Nodes,
					providers.Node{ID: "n-b1", Role: providers.RoleWorker, State: providers.NodeReady, EngineLabels: map[string]string{providers.EngineLabelInstance: "i-b1"}},
					providers.Node{ID: "n-q", Role: providers.RoleWorker, State: providers.NodeDown, EngineLabels: map[string]string{providers.EngineLabelInstance: "i-gone"}})
			},
			want: func(h *Health) {
				h.Swarm.Nodes, h.Swarm.Ready = 7, 6
				batch := group("workers/batch", 0, 1, 1, 0)
				batch.Declared = false
				unknown := group("unknown", 0, 0, 0, 1)
				unknown.Declared = false
				unknown.NodesWithoutInstance = []NodeRef{{ID: "n-q", Role: providers.RoleWorker, State: providers.NodeDown, Instance: "i-gone"}}
				h.Groups = append(h.Groups, unknown, batch) // undeclared groups by name
			},
		},
		{
			name: "an unlabelled manager whose instance is not listed belongs to managers",
			change: func(o *Observed) {
				o.Swarm.Nodes = append(o.Swarm.Nodes, providers.Node{ID: "n-m9", Role: providers.RoleManager, State: providers.NodeReady,
					Reachability: providers.Reachable, ManagerAddr: "10.0.2.9:2377", EngineLabels: map[string]string{providers.EngineLabelInstance: "i-m9"}})
			},
			want: func(h *Health) {
				h.Swarm.Nodes, h.Swarm.Ready, h.Swarm.Managers, h.Swarm.Reachable, h.Swarm.Quorum = 6, 6, 4, 4, 3
				h.Groups[0].Ready = 4
				h.Groups[0].NodesWithoutInstance = []NodeRef{{ID: "n-m9", Addr: "10.0.2.9:2377", Role: providers.RoleManager, State: providers.NodeReady, Instance: "i-m9"}}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			o := steady(spec)
			if tc.change != nil {
				tc.change(&o)
			}
			want := base()
			if tc.want != nil {
				tc.want(&want)
			}
			got := ClusterHealth(spec, o)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("health (-want +got):\n%s", d)
			}
			if got.Swarm.AtRisk() != tc.atRisk {
				t.Errorf("AtRisk() = %v, want %v", got.Swarm.AtRisk(), tc.atRisk)
			}
		})
	}
}

// TestClusterHealthAgreesWithCompute: the groups' counts agree with what the
// planner does: a spec that matches the health's counts plans no launch.
func TestClusterHealthAgreesWithCompute(t *testing.T) {
	spec := baseSpec()
	o := steady(spec)
	h := ClusterHealth(spec, o)
	for _, g := range h.Groups {
		if g.Instances != g.Desired || g.Ready != g.Desired {
			t.Errorf("group %s: %d instances, %d ready, want %d", g.Name, g.Instances, g.Ready, g.Desired)
		}
	}
	p, err := Compute(spec, o, Source{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 0 {
		t.Errorf("a healthy, in-shape cluster plans %d steps", len(p.Steps))
	}
	spec.Workers["web"] = schema.WorkerGroup{Count: 3, Availability: "active", Instance: spec.Workers["web"].Instance, Labels: spec.Workers["web"].Labels}
	if h := ClusterHealth(spec, o); h.Groups[1].Desired != 3 || h.Groups[1].Instances != 2 {
		t.Errorf("after scaling the spec: %+v", h.Groups[1])
	}
}

func TestAge(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{42*time.Second + 300*time.Millisecond, "42s"},
		{5*time.Minute + 10*time.Second, "5m"},
		{3*time.Hour + 59*time.Minute, "3h"},
		{47 * time.Hour, "47h"},
		{12*24*time.Hour + time.Hour, "12d"},
	} {
		if got := age(tc.d); got != tc.want {
			t.Errorf("age(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// BenchmarkClusterHealth measures status's health report on benchCase
// clusters (the planner's benchmark inputs).
func BenchmarkClusterHealth(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		spec, o := benchCase(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			var outdated int
			for b.Loop() {
				h := ClusterHealth(spec, o)
				outdated = 0
				for _, g := range h.Groups {
					outdated += len(g.OutOfDate)
				}
			}
			if outdated == 0 {
				b.Fatal("benchCase has out-of-date instances; none reported")
			}
		})
	}
}
