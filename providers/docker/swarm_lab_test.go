package docker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
)

func TestMain(m *testing.M) { os.Exit(lab.RunTests(m)) }

// startLabs brings up several labs at once (bring-up is mostly waiting).
func startLabs(t *testing.T, opts ...lab.Options) []*lab.Lab {
	t.Helper()
	testenv.NeedLab(t)
	testenv.NeedCommands(t, "docker")
	labs := make([]*lab.Lab, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Go(func() { labs[i], errs[i] = lab.New(o) })
	}
	wg.Wait()
	for _, l := range labs {
		if l != nil {
			t.Cleanup(func() {
				if err := l.Close(); err != nil {
					t.Errorf("lab teardown: %v", err)
				}
			})
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("lab: %v", err)
	}
	return labs
}

// counter counts API requests going through a transport.
type counter struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// must(f())(t) returns f's value, failing t on f's error.
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// nodeByInstance observes through sw and returns the node of instance id.
func nodeByInstance(t *testing.T, ctx context.Context, sw *docker.Swarm, id string) providers.Node {
	t.Helper()
	st := must(sw.Observe(ctx))(t)
	for _, n := range st.Nodes {
		if n.InstanceID() == id {
			return n
		}
	}
	t.Fatalf("no node has engine label %s=%s", providers.EngineLabelInstance, id)
	return providers.Node{}
}

// observeCalls counts the API requests of one Observe on a fresh client.
func observeCalls(t *testing.T, l *lab.Lab) (int64, int) {
	t.Helper()
	c := &counter{}
	sw := must(docker.New(l.Cloud.Endpoint(l.Managers[0].ID), docker.WithRoundTripper(func(b http.RoundTripper) http.RoundTripper {
		c.base = b
		return c
	})))(t)
	defer sw.Close()
	// Warm up: the first request of a client also negotiates the API
	// version (one extra ping), whatever it is.
	if _, err := sw.Observe(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	before := c.n.Load()
	st, err := sw.Observe(ctxFor(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c.n.Load() - before, len(st.Nodes)
}

// TestSwarm runs everything against two real swarms brought up side by side:
// "five" (3 managers, 2 workers) and "three" (1 manager, 2 workers).
func TestSwarm(t *testing.T) {
	labs := startLabs(t,
		lab.Options{Managers: 3, Workers: 2, Cluster: "five"},
		lab.Options{Managers: 1, Workers: 2, Cluster: "three"},
	)
	five, three := labs[0], labs[1]
	ctx := ctxFor(t, 5*time.Minute)
	leader5 := must(five.Leader(ctx))(t)
	leader3 := must(three.Leader(ctx))(t)

	t.Run("observe lists nodes matched to instances", func(t *testing.T) {
		st := must(leader5.Observe(ctx))(t)
		type row struct {
			Role                providers.Role
			State               providers.NodeState
			Availability        providers.Availability
			Hostname, Addr, Mgr string
			Reach               providers.Reachability
			Group               string
		}
		want := map[string]row{}
		for _, in := range five.All() {
			r := row{Role: providers.RoleWorker, State: providers.NodeReady, Availability: providers.AvailabilityActive,
				Hostname: in.ID, Addr: in.PrivateIP, Group: in.Group}
			if in.Group == lab.ManagersGroup {
				r.Role, r.Mgr, r.Reach = providers.RoleManager, in.PrivateIP+":2377", providers.Reachable
			}
			want[in.ID] = r
		}
		got := map[string]row{}
		leaders := 0
		groups := map[string]string{}
		for _, in := range five.All() {
			groups[in.ID] = in.Group
		}
		for _, n := range st.Nodes {
			got[n.InstanceID()] = row{Role: n.Role, State: n.State, Availability: n.Availability,
				Hostname: n.Hostname, Addr: n.Addr, Mgr: n.ManagerAddr, Reach: n.Reachability, Group: groups[n.InstanceID()]}
			if n.Leader {
				leaders++
				if st.LeaderAddr != n.ManagerAddr || st.SelfID != n.ID || !st.SelfIsLeader {
					t.Errorf("leader %s: state says leader %q self %q selfIsLeader %v", n.ID, st.LeaderAddr, st.SelfID, st.SelfIsLeader)
				}
			}
			if n.ID == "" || n.Version == 0 || n.CreatedAt.IsZero() {
				t.Errorf("node %+v lacks id, version or creation time", n)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("nodes by engine label (-want +got):\n%s", diff)
		}
		if leaders != 1 || !st.Active {
			t.Errorf("active=%v with %d leaders, want active with 1", st.Active, leaders)
		}
	})

	t.Run("leader detection", func(t *testing.T) {
		st := must(leader5.Observe(ctx))(t)
		var leaderNode string
		for _, n := range st.Nodes {
			if n.Leader {
				leaderNode = n.InstanceID()
			}
		}
		var got []string
		for _, in := range five.Managers {
			sw := must(five.Swarm(in.ID))(t)
			ok, err := sw.IsLeader(ctx)
			if err != nil {
				t.Fatalf("IsLeader on manager %s: %v", in.ID, err)
			}
			if ok {
				got = append(got, in.ID)
			}
		}
		if diff := cmp.Diff([]string{leaderNode}, got); diff != "" {
			t.Errorf("managers answering IsLeader (-want +got):\n%s", diff)
		}
		w := must(five.Swarm(five.Workers[0].ID))(t)
		if ok, err := w.IsLeader(ctx); ok || !errors.Is(err, docker.ErrNotManager) {
			t.Errorf("IsLeader on a worker = %v, %v; want false, ErrNotManager", ok, err)
		}
		ws, err := w.Observe(ctx)
		if !errors.Is(err, docker.ErrNotManager) || !ws.Active || ws.SelfID == "" {
			t.Errorf("Observe on a worker = %+v, %v; want active, self id, ErrNotManager", ws, err)
		}
	})

	t.Run("client from the standard environment", func(t *testing.T) {
		t.Setenv("DOCKER_HOST", three.Cloud.Endpoint(three.Managers[0].ID))
		sw := must(docker.New(""))(t)
		defer sw.Close()
		if ok, err := sw.IsLeader(ctx); !ok || err != nil {
			t.Errorf("IsLeader via DOCKER_HOST = %v, %v; want the single manager to lead", ok, err)
		}
	})

	t.Run("observe costs a constant number of calls", func(t *testing.T) {
		calls5, nodes5 := observeCalls(t, five)
		calls3, nodes3 := observeCalls(t, three)
		t.Logf("observe: %d calls for %d nodes, %d calls for %d nodes", calls3, nodes3, calls5, nodes5)
		if nodes5 != 5 || nodes3 != 3 {
			t.Fatalf("labs have %d and %d nodes, want 5 and 3", nodes5, nodes3)
		}
		if calls5 != calls3 || calls5 != 3 {
			t.Errorf("observe made %d calls for 5 nodes and %d for 3; want 3 (Info, SwarmInspect, NodeList) for both", calls5, calls3)
		}
	})

	t.Run("update retries a stale version", func(t *testing.T) {
		target := nodeByInstance(t, ctx, leader5, five.Workers[1].ID)
		other := must(five.Swarm(five.Managers[0].ID))(t)
		// A transport that, on the first node update, lets someone else
		// update the same node first: the update then carries a stale version.
		var updates, gen atomic.Int64
		interfere := func(base http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/nodes/"+target.ID+"/update") {
					if updates.Add(1) == 1 {
						v := fmt.Sprint(gen.Add(1))
						if err := other.UpdateNode(r.Context(), target.ID, providers.NodeChange{Labels: map[string]string{"meanwhile": v}}); err != nil {
							return nil, err
						}
					}
				}
				return base.RoundTrip(r)
			})
		}
		sw := must(docker.New(five.Cloud.Endpoint(five.Managers[0].ID), docker.WithRoundTripper(interfere)))(t)
		defer sw.Close()
		if err := sw.UpdateNode(ctx, target.ID, providers.NodeChange{Labels: map[string]string{"tier": "web"}}); err != nil {
			t.Fatalf("UpdateNode with one stale version: %v", err)
		}
		if n := updates.Load(); n != 2 {
			t.Errorf("node update requests = %d, want 2 (stale, then retried)", n)
		}
		got := nodeByInstance(t, ctx, leader5, five.Workers[1].ID).Labels
		if diff := cmp.Diff(map[string]string{"tier": "web", "meanwhile": "1"}, got); diff != "" {
			t.Errorf("labels after retry (-want +got):\n%s", diff)
		}

		updates.Store(0)
		once := must(docker.New(five.Cloud.Endpoint(five.Managers[0].ID), docker.WithRoundTripper(interfere), docker.WithUpdateAttempts(1)))(t)
		defer once.Close()
		err := once.UpdateNode(ctx, target.ID, providers.NodeChange{Labels: map[string]string{"tier": ""}})
		if !errors.Is(err, docker.ErrOutOfSequence) {
			t.Errorf("UpdateNode with no retries left = %v, want ErrOutOfSequence", err)
		}
	})

	t.Run("published ports", func(t *testing.T) {
		cli := leader5.Client()
		zero := uint64(0)
		spec := swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: "published"},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: lab.Image, Command: []string{"sleep", "100000"}}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
			EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{
				{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 80, PublishedPort: 18080, PublishMode: swarm.PortConfigPublishModeIngress},
				{Protocol: swarm.PortConfigProtocolUDP, TargetPort: 53, PublishedPort: 18053, PublishMode: swarm.PortConfigPublishModeIngress},
				{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 81, PublishedPort: 18081, PublishMode: swarm.PortConfigPublishModeHost},
			}},
		}
		svc := must(cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}))(t)
		t.Cleanup(func() { _ = cli.ServiceRemove(context.Background(), svc.ID) })
		want := []providers.PublishedPort{{Port: 18080, Protocol: "tcp", Service: "published"}, {Port: 18053, Protocol: "udp", Service: "published"}}
		var got []providers.PublishedPort
		if err := lab.Poll(ctx, func() (bool, error) {
			var err error
			got, err = leader5.PublishedPorts(ctx)
			return cmp.Equal(want, got), err
		}); err != nil {
			t.Fatalf("published ports = %+v, want %+v (ingress only): %v", got, want, err)
		}
	})

	t.Run("drain moves real tasks", func(t *testing.T) {
		cli := leader5.Client()
		replicas := uint64(4)
		spec := swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: "sleepers"},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
				Image: lab.Image, Command: []string{"sleep", "100000"},
			}},
			Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		}
		svc := must(cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}))(t)
		t.Cleanup(func() { _ = cli.ServiceRemove(context.Background(), svc.ID) })
		running := func() map[string]int {
			tasks := must(cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))}))(t)
			per := map[string]int{}
			for _, tk := range tasks {
				if tk.Status.State == swarm.TaskStateRunning && tk.DesiredState == swarm.TaskStateRunning {
					per[tk.NodeID]++
				}
			}
			return per
		}
		total := func(m map[string]int) (n int) {
			for _, v := range m {
				n += v
			}
			return n
		}
		if err := lab.Poll(ctx, func() (bool, error) { return total(running()) == 4, nil }); err != nil {
			t.Fatalf("service never ran 4 tasks: %v (running: %v)", err, running())
		}
		// Drain the node running most tasks.
		per := running()
		var victim string
		for id, n := range per {
			if victim == "" || n > per[victim] || (n == per[victim] && id < victim) {
				victim = id
			}
		}
		drain := providers.AvailabilityDrain
		if err := leader5.UpdateNode(ctx, victim, providers.NodeChange{Availability: &drain}); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := leader5.WaitDrained(wctx, victim); err != nil {
			t.Fatalf("WaitDrained: %v", err)
		}
		tasks := must(cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("node", victim))}))(t)
		if !docker.Drained(tasks) {
			t.Errorf("WaitDrained returned while node %s still has live tasks", victim)
		}
		if err := lab.Poll(ctx, func() (bool, error) {
			p := running()
			return total(p) == 4 && p[victim] == 0, nil
		}); err != nil {
			t.Fatalf("tasks did not move off %s: %v (running: %v)", victim, err, running())
		}
		active := providers.AvailabilityActive
		if err := leader5.UpdateNode(ctx, victim, providers.NodeChange{Availability: &active}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("promote then demote completes", func(t *testing.T) {
		w := nodeByInstance(t, ctx, leader5, five.Workers[0].ID)
		if err := leader5.Promote(ctx, w.ID); err != nil {
			t.Fatalf("Promote: %v", err)
		}
		if n := nodeByInstance(t, ctx, leader5, five.Workers[0].ID); n.Role != providers.RoleManager || n.Reachability != providers.Reachable {
			t.Fatalf("after Promote node is %s/%s, want reachable manager", n.Role, n.Reachability)
		}
		if err := leader5.Demote(ctx, w.ID); err != nil {
			t.Fatalf("Demote: %v", err)
		}
		// Demote returned: the very next inspect must show a worker.
		n, _, err := leader5.Client().NodeInspectWithRaw(ctx, w.ID)
		if err != nil || n.ManagerStatus != nil || n.Spec.Role != swarm.NodeRoleWorker {
			t.Errorf("after Demote: manager status %+v role %s err %v; want a worker", n.ManagerStatus, n.Spec.Role, err)
		}
	})

	t.Run("last manager refusal", func(t *testing.T) {
		m := nodeByInstance(t, ctx, leader3, three.Managers[0].ID)
		err := leader3.Demote(ctx, m.ID)
		if !errors.Is(err, docker.ErrLastManager) {
			t.Fatalf("demoting the only manager = %v, want ErrLastManager", err)
		}
		if strings.Contains(err.Error(), "rpc error") {
			t.Errorf("error carries raw daemon text: %q", err)
		}
		if n := nodeByInstance(t, ctx, leader3, three.Managers[0].ID); n.Role != providers.RoleManager {
			t.Errorf("refused demotion changed the role to %s", n.Role)
		}
	})

	t.Run("unknown node", func(t *testing.T) {
		active := providers.AvailabilityActive
		if err := leader3.UpdateNode(ctx, "nosuchnode0000000000000000", providers.NodeChange{Availability: &active}); !errors.Is(err, docker.ErrNotFound) {
			t.Errorf("UpdateNode(unknown) = %v, want ErrNotFound", err)
		}
		if err := leader3.RemoveNode(ctx, "nosuchnode0000000000000000", false); !errors.Is(err, docker.ErrNotFound) {
			t.Errorf("RemoveNode(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("rotated worker token no longer joins", func(t *testing.T) {
		before := must(leader3.JoinTokens(ctx))(t)
		if err := leader3.RotateJoinTokens(ctx, true, false); err != nil {
			t.Fatal(err)
		}
		after := must(leader3.JoinTokens(ctx))(t)
		if after.Worker == before.Worker || after.Manager != before.Manager {
			t.Fatalf("rotation of the worker token: worker changed=%v manager changed=%v; want true, false",
				after.Worker != before.Worker, after.Manager != before.Manager)
		}
		bare := must(three.Launch(ctx, "workers/extra", 1, nil))(t)[0]
		sw := must(three.Swarm(bare.ID))(t)
		if st, err := sw.Observe(ctx); err != nil || st.Active {
			t.Fatalf("fresh engine Observe = %+v, %v; want inactive, no error", st, err)
		}
		addr := three.Managers[0].PrivateIP + ":2377"
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		err := sw.Join(jctx, addr, before.Worker, bare.PrivateIP)
		if !errors.Is(err, docker.ErrInvalidJoinToken) {
			t.Fatalf("join with the rotated token = %v, want ErrInvalidJoinToken", err)
		}
		if strings.Contains(err.Error(), before.Worker) || strings.Contains(err.Error(), "SWMTKN") {
			t.Errorf("join error leaks the token: %q", err)
		}
		if err := sw.Join(jctx, addr, after.Worker, bare.PrivateIP); err != nil {
			t.Fatalf("join with the current token: %v", err)
		}
		if err := three.WaitNodes(ctx, leader3, 4); err != nil {
			t.Fatalf("new worker never became ready: %v", err)
		}
	})

	t.Run("remove refuses a ready node and removes a down one", func(t *testing.T) {
		ins := must(three.Cloud.Instances(ctx, three.Cluster))(t)
		var extra providers.Instance
		for _, in := range ins {
			if in.Group == "workers/extra" {
				extra = in
			}
		}
		if extra.ID == "" {
			t.Skip("needs the worker joined by the previous subtest")
		}
		n := nodeByInstance(t, ctx, leader3, extra.ID)
		if err := leader3.RemoveNode(ctx, n.ID, false); !errors.Is(err, docker.ErrNodeNotDown) {
			t.Fatalf("removing a ready node without force = %v, want ErrNodeNotDown", err)
		}
		if !n.DownSince.IsZero() {
			t.Errorf("ready node %s observed Down since %s, want no time", n.ID, n.DownSince)
		}
		stopped := time.Now()
		if err := three.Cloud.Stop(ctx, three.Cluster, extra.ID); err != nil {
			t.Fatal(err)
		}
		if err := lab.Poll(ctx, func() (bool, error) {
			return nodeByInstance(t, ctx, leader3, extra.ID).State == providers.NodeDown, nil
		}); err != nil {
			t.Fatalf("stopped node never went down: %v", err)
		}
		// Down since: when the manager marked it Down (the lab's managers
		// share this host's clock), and the same in a later observation.
		seen := time.Now()
		down := nodeByInstance(t, ctx, leader3, extra.ID)
		if down.DownSince.Before(stopped) || down.DownSince.After(seen) {
			t.Errorf("node %s observed Down since %s, want between its stop (%s) and now (%s)", n.ID, down.DownSince, stopped, seen)
		}
		t.Logf("node Down %s after its machine stopped; seen Down %s after that", down.DownSince.Sub(stopped), seen.Sub(down.DownSince))
		if err := lab.Poll(ctx, func() (bool, error) { return time.Since(seen) > 2*time.Second, nil }); err != nil {
			t.Fatal(err)
		}
		if again := nodeByInstance(t, ctx, leader3, extra.ID); !again.DownSince.Equal(down.DownSince) {
			t.Errorf("node %s observed Down since %s, then since %s: want it stable while Down", n.ID, down.DownSince, again.DownSince)
		}
		if err := leader3.RemoveNode(ctx, n.ID, false); err != nil {
			t.Fatalf("removing a down node: %v", err)
		}
		st := must(leader3.Observe(ctx))(t)
		for _, x := range st.Nodes {
			if x.ID == n.ID {
				t.Errorf("node %s still listed after removal", n.ID)
			}
		}
		if err := three.Cloud.Terminate(ctx, three.Cluster, []string{extra.ID}); err != nil {
			t.Fatal(err)
		}
	})

	// Last on "five": it leaves the swarm without quorum headroom.
	t.Run("quorum refusal", func(t *testing.T) {
		st := must(leader5.Observe(ctx))(t)
		var others []providers.Node
		for _, n := range st.Nodes {
			if n.Role == providers.RoleManager && !n.Leader {
				others = append(others, n)
			}
		}
		if len(others) != 2 {
			t.Fatalf("want 2 non-leader managers, have %d", len(others))
		}
		sort.Slice(others, func(i, j int) bool { return others[i].ID < others[j].ID })
		stopped, victim := others[0], others[1]
		if err := five.Cloud.Stop(ctx, five.Cluster, stopped.InstanceID()); err != nil {
			t.Fatal(err)
		}
		if err := lab.Poll(ctx, func() (bool, error) {
			return nodeByInstance(t, ctx, leader5, stopped.InstanceID()).Reachability == providers.Unreachable, nil
		}); err != nil {
			t.Fatalf("stopped manager never became unreachable: %v", err)
		}
		// Down since is the Swarm's own record: every manager reports the
		// same, so a leader elected later reads it too.
		if err := lab.Poll(ctx, func() (bool, error) {
			return nodeByInstance(t, ctx, leader5, stopped.InstanceID()).State == providers.NodeDown, nil
		}); err != nil {
			t.Fatalf("stopped manager never went down: %v", err)
		}
		follower := must(docker.New(five.Cloud.Endpoint(victim.InstanceID())))(t)
		defer follower.Close()
		fromLeader := nodeByInstance(t, ctx, leader5, stopped.InstanceID()).DownSince
		if fromFollower := nodeByInstance(t, ctx, follower, stopped.InstanceID()).DownSince; fromLeader.IsZero() || !fromFollower.Equal(fromLeader) {
			t.Errorf("manager %s Down since %s seen from the leader, %s from a follower: want one time", stopped.ID, fromLeader, fromFollower)
		}
		err := leader5.Demote(ctx, victim.ID)
		if !errors.Is(err, docker.ErrQuorum) {
			t.Fatalf("demote with one of three managers down = %v, want ErrQuorum", err)
		}
		if n := nodeByInstance(t, ctx, leader5, victim.InstanceID()); n.Role != providers.RoleManager {
			t.Errorf("refused demotion changed the role to %s", n.Role)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
