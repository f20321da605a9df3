package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/schema"
)

// TestAWSTargetsAndListeners runs the load balancer integration on the
// AWS path (emulated EC2 and ELBv2, real lab machines), with the managed
// security group (every instance launched with it): workers 2 → 4 → 1
// with a target group (deregistration delay 2 s). After every pass each
// registered target is a Ready node labelled with its group, and every
// such node is registered; while it runs, a watcher checks every 100 ms
// that no node is drained while still registered. A service published on
// a port gets a listener; removing the service removes it. Subnet
// 10.247.26.0/24.
func TestAWSTargetsAndListeners(t *testing.T) {
	aw := NewAWSWorldDetail(t, "awslb", 26)
	w := aw.World
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tg := aw.Sim.AddTargetGroup("general", 80, 2*time.Second)
	lb := aw.Sim.AddLoadBalancer("awslb")
	base := w.Spec
	g := base.Workers["general"]
	g.TargetGroups = []string{tg}
	base.Workers = map[string]schema.WorkerGroup{"general": g}
	base.LoadBalancer = &schema.LoadBalancer{ARN: lb, Group: "general"}
	base.Provider = schema.Provider{AWS: &schema.AWSProvider{Region: base.Provider.AWS.Region, ManagedSecurityGroup: true}}
	rec := &Recorder{}
	start := time.Now()

	for _, n := range []int{2, 4, 1} {
		spec := withCounts(base, 1, n)
		var watch *drainWatch
		if n == 1 {
			watch = watchDrains(ctx, t, w, aw.Sim, tg)
		}
		MustConverge(ctx, t, w, spec, rec)
		if watch != nil {
			watch.stop(t)
		}
		CheckShape(ctx, t, w, spec)
		checkTargets(ctx, t, w, aw.Sim, tg, n)
		checkManagedSG(t, aw.Sim, w.Spec.Name)
	}

	sw, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cli := sw.(*docker.Swarm).Client()
	zero := uint64(0)
	svc, err := cli.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: "web"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: lab.Image, Command: []string{"sleep", "100000"}}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80, PublishedPort: 18080}}},
	}, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The port is allocated asynchronously: wait until the Swarm lists it.
	if err := lab.Poll(ctx, func() (bool, error) {
		ps, err := sw.(providers.PortObserver).PublishedPorts(ctx)
		return len(ps) == 1, err
	}); err != nil {
		t.Fatalf("the service's port was never published: %v", err)
	}
	spec := withCounts(base, 1, 1)
	MustConverge(ctx, t, w, spec, rec)
	if got := aw.Sim.ListenerPorts(lb); !slices.Equal(got, []int{18080}) {
		t.Fatalf("listener ports %v, want [18080] for the published service", got)
	}
	checkTargets(ctx, t, w, aw.Sim, tg, 1)
	if err := cli.ServiceRemove(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	if err := lab.Poll(ctx, func() (bool, error) {
		ps, err := sw.(providers.PortObserver).PublishedPorts(ctx)
		return len(ps) == 0, err
	}); err != nil {
		t.Fatalf("the removed service's port stayed published: %v", err)
	}
	MustConverge(ctx, t, w, spec, rec)
	if got := aw.Sim.ListenerPorts(lb); len(got) != 0 {
		t.Fatalf("listener ports %v after the service was removed, want none", got)
	}
	t.Logf("FIGURE aws workers 2 → 4 → 1 with a target group, then a listener created and removed: %s", time.Since(start).Round(10*time.Millisecond))
	assertNoTokenIn(ctx, t, w, rec.Text())
}

// checkManagedSG: the cluster's managed security group exists with
// Swarm's rules, and every live instance was launched with it.
func checkManagedSG(t *testing.T, sim *ec2sim.Server, cluster string) {
	t.Helper()
	var id string
	for _, g := range sim.SecurityGroups() {
		if g.Tags[providers.TagCluster] == cluster {
			if id != "" {
				t.Fatalf("two security groups are tagged with cluster %s", cluster)
			}
			id = g.ID
			if len(g.Ingress) != 4 {
				t.Errorf("the managed security group has rules %+v, want Swarm's four", g.Ingress)
			}
		}
	}
	if id == "" {
		t.Fatal("no managed security group")
	}
	for _, in := range sim.Instances() {
		if in.State != ec2sim.StateTerminated && in.State != ec2sim.StateShuttingDown && !slices.Contains(in.SecurityGroups, id) {
			t.Errorf("instance %s was launched without the managed security group %s (groups %v)", in.ID, id, in.SecurityGroups)
		}
	}
}

// checkTargets: the registered targets of tg are exactly the Ready nodes
// labelled workers/general (n of them).
func checkTargets(ctx context.Context, t *testing.T, w *World, sim *ec2sim.Server, tg string, n int) {
	t.Helper()
	sw, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sw.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var labelled []string
	for _, node := range st.Nodes {
		if node.State == providers.NodeReady && node.Labels[providers.NodeLabelGroup] == "workers/general" {
			labelled = append(labelled, node.InstanceID())
		}
	}
	var registered []string
	for _, tt := range sim.Targets(tg) {
		if tt.State != providers.TargetDraining {
			registered = append(registered, tt.ID)
		}
	}
	slices.Sort(labelled)
	slices.Sort(registered)
	if len(registered) != n || !slices.Equal(labelled, registered) {
		t.Fatalf("registered targets %v; want the %d Ready nodes labelled workers/general %v", registered, n, labelled)
	}
}

// drainWatch polls the Swarm and the target group while a pass runs.
type drainWatch struct {
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	bad      []string
	drained  int // polls that saw a drained node (out of the target group)
	polls    int
	pollErrs int
}

// watchDrains starts a watcher that records any node whose availability is
// drain while its instance is a registered target of tg.
func watchDrains(ctx context.Context, t *testing.T, w *World, sim *ec2sim.Server, tg string) *drainWatch {
	t.Helper()
	sw, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &drainWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			st, err := sw.Observe(ctx)
			targets := sim.Targets(tg)
			d.mu.Lock()
			d.polls++
			if err != nil {
				d.pollErrs++
			}
			for _, node := range st.Nodes {
				if node.Availability != providers.AvailabilityDrain || node.Role != providers.RoleWorker {
					continue
				}
				i := slices.IndexFunc(targets, func(x ec2sim.Target) bool { return x.ID == node.InstanceID() })
				if i >= 0 && targets[i].State != providers.TargetDraining {
					d.bad = append(d.bad, fmt.Sprintf("node %s (instance %s) drained while %s in the target group", node.ID, node.InstanceID(), targets[i].State))
				} else {
					d.drained++
				}
			}
			d.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return d
}

func (d *drainWatch) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	t.Logf("drain watch: %d polls (%d failed), %d sightings of a drained node out of the target group", d.polls, d.pollErrs, d.drained)
	for _, b := range d.bad {
		t.Error(b)
	}
	if d.drained == 0 {
		t.Error("the watcher never saw a drained node: it did not watch the scale-down")
	}
}
