package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// Compile-time checks: the fakes implement the interfaces apply consumes.
var (
	_ providers.Cloud = (*fakeCloud)(nil)
	_ providers.Swarm = (*fakeSwarm)(nil)
	_ SwarmDialer     = (*fakeSwarm)(nil)
	_ TaskMover       = (*fakeSwarm)(nil)
	_ Clock           = (*fakeClock)(nil)
)

// fakeClock advances virtual time by d on every After and fires at once.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	t := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- t
	return ch
}

// fakeSwarm is an in-memory Swarm: nodes join when the fake cloud "boots"
// a launched instance's user data.
type fakeSwarm struct {
	mu         sync.Mutex
	active     bool
	leader     bool
	leaderAddr string
	// leaderChecks, when >0, makes IsLeader false after that many checks.
	loseLeadershipAfter int
	leaderChecks        int
	nodes               map[string]*providers.Node
	tokens              providers.JoinTokens
	rotations           int
	noJoin              bool // launched instances never join
	neverDrain          bool
	// unmovedChecks: TasksMoved reports false this many times first;
	// -1 means never.
	unmovedChecks int
	calls         []string
	dialed        int
	selfID        string // the endpoint's own node
	// beforeRemove, when set, runs at the start of RemoveNode (unlocked).
	beforeRemove func(id string)
}

func newFakeSwarm() *fakeSwarm {
	return &fakeSwarm{
		nodes:  map[string]*providers.Node{},
		tokens: providers.JoinTokens{Worker: "SWMTKN-1-workersecret0001", Manager: "SWMTKN-1-managersecret0001"},
	}
}

func (s *fakeSwarm) record(format string, args ...any) {
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
}

// boot runs a launched instance's "user data".
func (s *fakeSwarm) boot(inst providers.Instance, userData string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noJoin {
		return
	}
	role := providers.RoleWorker
	switch {
	case strings.Contains(userData, "docker swarm init"):
		s.active, s.leader = true, true
		s.leaderAddr = inst.PrivateIP + ":2377"
		role = providers.RoleManager
	case strings.Contains(userData, s.tokens.Manager):
		role = providers.RoleManager
	case strings.Contains(userData, s.tokens.Worker):
	default:
		return // a stale token: the join fails
	}
	n := &providers.Node{
		ID: "node-" + inst.ID, Hostname: inst.ID, Role: role, State: providers.NodeReady,
		Availability: providers.AvailabilityActive, Addr: inst.PrivateIP,
		EngineLabels: map[string]string{providers.EngineLabelInstance: inst.ID},
	}
	if role == providers.RoleManager {
		n.ManagerAddr, n.Reachability = inst.PrivateIP+":2377", providers.Reachable
		n.Leader = strings.Contains(userData, "docker swarm init")
	}
	s.nodes[n.ID] = n
}

func (s *fakeSwarm) Dial(ctx context.Context, inst providers.Instance) (providers.Swarm, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dialed++
	return s, nil
}

func (s *fakeSwarm) Observe(ctx context.Context) (providers.SwarmState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return providers.SwarmState{}, nil
	}
	st := providers.SwarmState{Active: true, SelfID: s.selfID, SelfIsLeader: s.leader, LeaderAddr: s.leaderAddr}
	for _, n := range s.nodes {
		c := *n
		st.Nodes = append(st.Nodes, c)
	}
	return st, nil
}

func (s *fakeSwarm) IsLeader(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaderChecks++
	if s.loseLeadershipAfter > 0 && s.leaderChecks > s.loseLeadershipAfter {
		s.leader = false
	}
	if !s.active {
		return false, errors.New("this node is not a swarm manager")
	}
	return s.leader, nil
}

func (s *fakeSwarm) JoinTokens(ctx context.Context) (providers.JoinTokens, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens, nil
}

func (s *fakeSwarm) RotateJoinTokens(ctx context.Context, worker, manager bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotations++
	s.record("rotate %v %v", worker, manager)
	if worker {
		s.tokens.Worker = fmt.Sprintf("SWMTKN-1-workersecret%04d", s.rotations+1)
	}
	if manager {
		s.tokens.Manager = fmt.Sprintf("SWMTKN-1-managersecret%04d", s.rotations+1)
	}
	return nil
}

func (s *fakeSwarm) node(id string) (*providers.Node, error) {
	n, ok := s.nodes[id]
	if !ok {
		return nil, fmt.Errorf("node %s: %w", id, providers.ErrNodeNotFound)
	}
	return n, nil
}

func (s *fakeSwarm) UpdateNode(ctx context.Context, id string, ch providers.NodeChange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(id)
	if err != nil {
		return err
	}
	s.record("update %s", id)
	if ch.Availability != nil {
		n.Availability = *ch.Availability
	}
	if ch.Labels != nil {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		for k, v := range ch.Labels {
			n.Labels[k] = v
		}
	}
	return nil
}

func (s *fakeSwarm) Demote(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(id)
	if err != nil {
		return err
	}
	s.record("demote %s", id)
	n.Role, n.ManagerAddr, n.Reachability, n.Leader = providers.RoleWorker, "", "", false
	if id == s.selfID {
		s.leader = false // leadership moves to another manager
	}
	return nil
}

func (s *fakeSwarm) Promote(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(id)
	if err != nil {
		return err
	}
	s.record("promote %s", id)
	n.Role, n.ManagerAddr, n.Reachability = providers.RoleManager, n.Addr+":2377", providers.Reachable
	return nil
}

func (s *fakeSwarm) WaitDrained(ctx context.Context, id string) error {
	s.mu.Lock()
	never := s.neverDrain
	s.mu.Unlock()
	if never {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (s *fakeSwarm) TasksMoved(ctx context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unmovedChecks < 0 {
		return false, nil
	}
	if s.unmovedChecks > 0 {
		s.unmovedChecks--
		return false, nil
	}
	return true, nil
}

func (s *fakeSwarm) RemoveNode(ctx context.Context, id string, force bool) error {
	if s.beforeRemove != nil {
		s.beforeRemove(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.node(id)
	if err != nil {
		return err
	}
	if n.Role == providers.RoleManager {
		return errors.New("rpc error: node is a manager: demote it first")
	}
	if !force && n.State != providers.NodeDown {
		// As Swarm on the lab's engines: only a Down node goes without force.
		return errors.New("rpc error: node is not down and can't be removed")
	}
	s.record("remove %s force=%v", id, force)
	delete(s.nodes, id)
	return nil
}

// markDown marks the node of an instance Down (its machine went away).
func (s *fakeSwarm) markDown(instanceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		if n.InstanceID() == instanceID {
			n.State = providers.NodeDown
		}
	}
}

// fakeCloud is an in-memory cloud that honours idempotency tokens.
type fakeCloud struct {
	mu       sync.Mutex
	swarm    *fakeSwarm
	seq      int
	insts    map[string]*providers.Instance
	byToken  map[string][]providers.Instance
	launches []providers.LaunchRequest
	// failLaunch makes Launch fail for this group, echoing the user data
	// (as a careless provider might).
	failLaunch string
	inflight   int
	// barrier, when >0, holds each Launch until that many are in flight at
	// once (proves parallelism; a sequential executor never releases it).
	barrier int
	release chan struct{}
	// downLater leaves the node of a terminated instance Ready: the test
	// marks it Down (the Swarm takes ~3 heartbeats to notice).
	downLater bool
}

func newFakeCloud(sw *fakeSwarm) *fakeCloud {
	return &fakeCloud{swarm: sw, insts: map[string]*providers.Instance{}, byToken: map[string][]providers.Instance{}}
}

func (c *fakeCloud) Instances(ctx context.Context, cluster string) ([]providers.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []providers.Instance
	for _, in := range c.insts {
		if in.Cluster == cluster {
			out = append(out, *in)
		}
	}
	return out, nil
}

func (c *fakeCloud) Launch(ctx context.Context, req providers.LaunchRequest) ([]providers.Instance, error) {
	c.mu.Lock()
	c.inflight++
	if c.barrier > 0 && c.inflight == c.barrier {
		close(c.release)
	}
	release := c.release
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.inflight--; c.mu.Unlock() }()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	c.mu.Lock()
	if req.Group == c.failLaunch {
		c.mu.Unlock()
		return nil, fmt.Errorf("launch refused for user data %q", req.UserData)
	}
	c.launches = append(c.launches, req)
	if got, ok := c.byToken[req.IdempotencyToken]; ok {
		c.mu.Unlock()
		return got, nil
	}
	var out []providers.Instance
	for range req.Count {
		c.seq++
		in := &providers.Instance{
			ID: fmt.Sprintf("i-%04d", c.seq), Cluster: req.Cluster, Group: req.Group,
			Config: req.Tags[providers.TagConfig], State: providers.StateRunning,
			PrivateIP: fmt.Sprintf("10.9.0.%d", c.seq), Tags: req.Tags,
		}
		c.insts[in.ID] = in
		out = append(out, *in)
	}
	c.byToken[req.IdempotencyToken] = out
	c.mu.Unlock()
	for _, in := range out {
		c.swarm.boot(in, string(req.UserData))
	}
	return out, nil
}

func (c *fakeCloud) Terminate(ctx context.Context, cluster string, ids []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		in, ok := c.insts[id]
		if !ok || in.Cluster != cluster {
			return fmt.Errorf("instance %s is not owned by cluster %s", id, cluster)
		}
	}
	for _, id := range ids {
		c.insts[id].State = providers.StateTerminated
		if !c.downLater {
			c.swarm.markDown(id)
		}
	}
	return nil
}

func (c *fakeCloud) live() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, in := range c.insts {
		if in.State.Live() {
			n++
		}
	}
	return n
}

// otherLeader is another manager's endpoint on the same fake swarm: it is
// the leader once the first endpoint's node was demoted.
type otherLeader struct{ *fakeSwarm }

func (o otherLeader) IsLeader(ctx context.Context) (bool, error) { return true, nil }
