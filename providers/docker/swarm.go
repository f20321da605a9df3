package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmsync/swarmsync/providers"
)

// NewTicker returns a channel of poll moments and a function that stops it.
// Waits (promote, demote, drain) poll once per tick, bounded by their ctx.
type NewTicker func() (<-chan time.Time, func())

// EveryInterval returns a NewTicker backed by time.NewTicker(d).
func EveryInterval(d time.Duration) NewTicker {
	return func() (<-chan time.Time, func()) {
		t := time.NewTicker(d)
		return t.C, t.Stop
	}
}

// DefaultPollInterval is how often waits poll unless WithTicker says otherwise.
const DefaultPollInterval = 500 * time.Millisecond

// DefaultUpdateAttempts bounds the retries of an update that Swarm answers
// with "update out of sequence".
const DefaultUpdateAttempts = 5

type options struct {
	wrap     func(http.RoundTripper) http.RoundTripper
	extra    []client.Opt
	ticker   NewTicker
	attempts int
	logger   *slog.Logger
	timeout  time.Duration
}

// Option configures a Swarm.
type Option func(*options)

// WithRoundTripper wraps the client's HTTP transport (after the host and TLS
// are configured), e.g. to count or trace API calls.
func WithRoundTripper(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(o *options) { o.wrap = wrap }
}

// WithClientOpts appends raw Docker client options (applied last).
func WithClientOpts(opts ...client.Opt) Option {
	return func(o *options) { o.extra = append(o.extra, opts...) }
}

// WithRequestTimeout bounds each Engine API request (default RequestTimeout).
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithTicker sets how waits poll (default EveryInterval(DefaultPollInterval)).
func WithTicker(t NewTicker) Option { return func(o *options) { o.ticker = t } }

// WithUpdateAttempts bounds the attempts of an update that keeps meeting
// "update out of sequence" (default DefaultUpdateAttempts).
func WithUpdateAttempts(n int) Option { return func(o *options) { o.attempts = n } }

// WithLogger sets the structured logger (default: discard). Tokens are never logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// RequestTimeout bounds one Docker Engine API request.
const RequestTimeout = 60 * time.Second

// Swarm is providers.Swarm through one Docker endpoint.
type Swarm struct {
	cli  *client.Client
	opts options

	mu     sync.Mutex
	selfID string // cached node ID of the endpoint's engine
}

var _ providers.Swarm = (*Swarm)(nil)

// New connects to host (e.g. unix:///run/x/docker.sock, tcp://h:2376), or,
// when host is empty, to the endpoint of the standard environment
// (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH). The API version is
// negotiated with the engine on first use.
func New(host string, opt ...Option) (*Swarm, error) {
	o := options{ticker: EveryInterval(DefaultPollInterval), attempts: DefaultUpdateAttempts, logger: slog.New(slog.DiscardHandler)}
	for _, f := range opt {
		f(&o)
	}
	if o.attempts < 1 {
		o.attempts = 1
	}
	copts := []client.Opt{client.FromEnv}
	if host != "" {
		copts = append(copts, client.WithHost(host))
	}
	// Every request is bounded: an engine that stops answering costs a pass
	// RequestTimeout, not forever (no call of this provider streams).
	copts = append(copts, client.WithAPIVersionNegotiation(), client.WithTimeout(cmp.Or(o.timeout, RequestTimeout)))
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("failed to create docker client: %w", classify(err))
	}
	if o.wrap != nil || len(o.extra) > 0 {
		more := copts
		if o.wrap != nil {
			hc := cli.HTTPClient()
			hc.Transport = o.wrap(hc.Transport)
			more = append(more, client.WithHTTPClient(hc))
		}
		more = append(more, o.extra...)
		if cli, err = client.NewClientWithOpts(more...); err != nil {
			return nil, fmt.Errorf("failed to create docker client: %w", classify(err))
		}
	}
	return &Swarm{cli: cli, opts: o}, nil
}

// Close releases the client's connections.
func (s *Swarm) Close() error { return s.cli.Close() }

// Host returns the endpoint this Swarm talks to.
func (s *Swarm) Host() string { return s.cli.DaemonHost() }

// Client exposes the underlying Docker client (for tests and tooling).
func (s *Swarm) Client() *client.Client { return s.cli }

// Observe lists every node, leadership, the swarm's spec labels and its
// creation time in three API calls (Info, SwarmInspect, NodeList), whatever
// the number of nodes. On an engine outside any swarm it returns
// Active=false and no error. On a worker it returns Active and SelfID with
// ErrNotManager (workers cannot list nodes). The join tokens SwarmInspect
// also returns are dropped at once.
func (s *Swarm) Observe(ctx context.Context) (providers.SwarmState, error) {
	info, err := s.cli.Info(ctx)
	if err != nil {
		return providers.SwarmState{}, fmt.Errorf("failed to observe swarm: %w", classify(err))
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
		return providers.SwarmState{Active: false, Nodes: []providers.Node{}}, nil
	}
	st := providers.SwarmState{Active: true, SelfID: info.Swarm.NodeID, Nodes: []providers.Node{}}
	s.setSelf(st.SelfID)
	if !info.Swarm.ControlAvailable {
		return st, fmt.Errorf("failed to observe swarm: %w", ErrNotManager)
	}
	sw, err := s.cli.SwarmInspect(ctx)
	if err != nil {
		return st, fmt.Errorf("failed to inspect swarm: %w", classify(err))
	}
	// The apply lease is not cluster state (see providers.SwarmLabelLease).
	for k, v := range sw.Spec.Labels {
		if k == providers.SwarmLabelLease {
			continue
		}
		if st.Labels == nil {
			st.Labels = map[string]string{}
		}
		st.Labels[k] = v
	}
	st.CreatedAt = sw.CreatedAt.UTC()
	list, err := s.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return st, fmt.Errorf("failed to list nodes: %w", classify(err))
	}
	for _, n := range list {
		node := toNode(n)
		if node.Leader {
			st.LeaderAddr = node.ManagerAddr
			if node.ID == st.SelfID {
				st.SelfIsLeader = true
			}
		}
		st.Nodes = append(st.Nodes, node)
	}
	return st, nil
}

func (s *Swarm) setSelf(id string) {
	s.mu.Lock()
	s.selfID = id
	s.mu.Unlock()
}

// self returns the endpoint's node ID, asking the engine once.
func (s *Swarm) self(ctx context.Context) (string, error) {
	s.mu.Lock()
	id := s.selfID
	s.mu.Unlock()
	if id != "" {
		return id, nil
	}
	info, err := s.cli.Info(ctx)
	if err != nil {
		return "", classify(err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || info.Swarm.NodeID == "" {
		return "", ErrNotInSwarm
	}
	s.setSelf(info.Swarm.NodeID)
	return info.Swarm.NodeID, nil
}

// SelfID returns the node ID of the endpoint's engine.
func (s *Swarm) SelfID(ctx context.Context) (string, error) {
	id, err := s.self(ctx)
	if err != nil {
		return "", fmt.Errorf("failed to identify the endpoint's node: %w", err)
	}
	return id, nil
}

// IsLeader inspects the endpoint's own node and reads ManagerStatus.Leader
// (one API call once the node ID is cached). Leadership changes do not come
// as events, so callers poll this before every mutating step.
func (s *Swarm) IsLeader(ctx context.Context) (bool, error) {
	id, err := s.self(ctx)
	if err != nil {
		return false, fmt.Errorf("failed to check leadership: %w", err)
	}
	n, _, err := s.cli.NodeInspectWithRaw(ctx, id)
	if err != nil {
		return false, fmt.Errorf("failed to check leadership: %w", classify(err))
	}
	return n.ManagerStatus != nil && n.ManagerStatus.Leader, nil
}

// JoinTokens reads the current join tokens (secret).
func (s *Swarm) JoinTokens(ctx context.Context) (providers.JoinTokens, error) {
	sw, err := s.cli.SwarmInspect(ctx)
	if err != nil {
		return providers.JoinTokens{}, fmt.Errorf("failed to read join tokens: %w", classify(err))
	}
	return providers.JoinTokens{Worker: sw.JoinTokens.Worker, Manager: sw.JoinTokens.Manager}, nil
}

// RotateJoinTokens replaces the worker and/or manager join token, retrying
// "update out of sequence": RotateAndRecord without a lower bound (a
// rotation of both tokens is recorded at the latest node's creation).
func (s *Swarm) RotateJoinTokens(ctx context.Context, worker, manager bool) error {
	return s.RotateAndRecord(ctx, providers.JoinTokenRotation{Worker: worker, Manager: manager})
}

var _ providers.JoinTokenRecorder = (*Swarm)(nil)

// RotateAndRecord rotates the tokens r names and, when it rotates both,
// writes the swarm spec label providers.SwarmLabelJoinTokensRotated in the
// same SwarmUpdate, so the rotation and its record cannot part (a crash
// leaves either both or neither). The time written is the latest of
// r.RecordAt, the latest CreatedAt of the nodes listed just before the
// update, and the time already recorded (the record never moves back).
//
// Nodes' creation times come from the manager's clock, r.RecordAt from the
// caller's: with the nodes in the max, no node that joined before the
// rotation is newer than the record, whatever the skew, so the planner
// (joinTokens.rotateAfterJoin: a node created after the record may hold a
// token that was never rotated) does not rotate again for it. A node that
// joins after the listing has a later CreatedAt (the same clock) and is
// seen as joined after the rotation on the next pass: rotating once more
// for one that joined just before the update is harmless. A rotation of
// one token records nothing (the label says both were rotated). It retries
// "update out of sequence" (a concurrent swarm update).
func (s *Swarm) RotateAndRecord(ctx context.Context, r providers.JoinTokenRotation) error {
	if !r.Worker && !r.Manager {
		return nil
	}
	both := r.Worker && r.Manager
	var last error
	for attempt := 1; attempt <= s.opts.attempts; attempt++ {
		at := r.RecordAt
		if both {
			nodes, err := s.cli.NodeList(ctx, swarm.NodeListOptions{})
			if err != nil {
				return fmt.Errorf("failed to list nodes before rotating join tokens: %w", classify(err))
			}
			for _, n := range nodes {
				if n.CreatedAt.After(at) {
					at = n.CreatedAt
				}
			}
		}
		sw, err := s.cli.SwarmInspect(ctx)
		if err != nil {
			return fmt.Errorf("failed to rotate join tokens: %w", classify(err))
		}
		spec := sw.Spec
		record := false
		if both && !at.IsZero() {
			prev, ok := providers.ParseRotated(spec.Labels[providers.SwarmLabelJoinTokensRotated])
			if record = !ok || at.After(prev); record {
				labels := maps.Clone(spec.Labels)
				if labels == nil {
					labels = map[string]string{}
				}
				labels[providers.SwarmLabelJoinTokensRotated] = providers.FormatRotated(at)
				spec.Labels = labels
			}
		}
		err = classify(s.cli.SwarmUpdate(ctx, sw.Version, spec, swarm.UpdateFlags{RotateWorkerToken: r.Worker, RotateManagerToken: r.Manager}))
		if err == nil {
			s.opts.logger.Info("rotated join tokens", "worker", r.Worker, "manager", r.Manager, "recorded", record)
			return nil
		}
		if !errors.Is(err, ErrOutOfSequence) {
			return fmt.Errorf("failed to rotate join tokens: %w", err)
		}
		last = err
	}
	return fmt.Errorf("failed to rotate join tokens after %d attempts: %w", s.opts.attempts, last)
}

// UpdateNode applies change to the node's spec: it inspects the node for its
// current version and full spec, applies the change, and retries when Swarm
// answers "update out of sequence" (someone else updated it meanwhile), up to
// the configured number of attempts.
func (s *Swarm) UpdateNode(ctx context.Context, nodeID string, change providers.NodeChange) error {
	if err := s.updateNode(ctx, nodeID, change); err != nil {
		return fmt.Errorf("failed to update node %s: %w", nodeID, err)
	}
	return nil
}

func (s *Swarm) updateNode(ctx context.Context, nodeID string, change providers.NodeChange) error {
	var last error
	for attempt := 1; attempt <= s.opts.attempts; attempt++ {
		n, _, err := s.cli.NodeInspectWithRaw(ctx, nodeID)
		if err != nil {
			return classify(err)
		}
		spec := n.Spec
		if change.Availability != nil {
			spec.Availability = swarm.NodeAvailability(*change.Availability)
		}
		if change.Role != nil {
			spec.Role = swarm.NodeRole(*change.Role)
		}
		if change.Labels != nil {
			labels := maps.Clone(spec.Labels)
			if labels == nil {
				labels = map[string]string{}
			}
			for k, v := range change.Labels {
				if v == "" {
					delete(labels, k)
				} else {
					labels[k] = v
				}
			}
			spec.Labels = labels
		}
		err = classify(s.cli.NodeUpdate(ctx, nodeID, n.Version, spec))
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrOutOfSequence) {
			return err
		}
		s.opts.logger.Info("node update out of sequence, retrying", "node", nodeID, "attempt", attempt)
		last = err
	}
	return fmt.Errorf("gave up after %d attempts: %w", s.opts.attempts, last)
}

// Demote demotes a manager and waits until the demotion took effect (a
// fresh inspect shows no manager status). Swarm's refusals come back as
// ErrLastManager or ErrQuorum and change nothing.
//
// The endpoint's own node is different: while it steps down, its engine
// shuts its control socket, so the update or the inspects after it may fail
// with ErrUnavailable ("Unavailable … control.sock") although the demotion
// happened, and a worker cannot inspect nodes at all. For it, success is the
// engine's own Info reporting ControlAvailable=false (it is no manager any
// more), polled on the ticker and bounded by ctx. An ErrUnavailable from the
// update is not taken as failure until the engine answers again as a
// manager whose node is still meant to be one (the update never took).
func (s *Swarm) Demote(ctx context.Context, nodeID string) error {
	self, _ := s.self(ctx)
	worker := providers.RoleWorker
	err := s.updateNode(ctx, nodeID, providers.NodeChange{Role: &worker})
	if nodeID == self && nodeID != "" && (err == nil || errors.Is(err, ErrUnavailable)) {
		s.opts.logger.Info("demoting the endpoint's own node; waiting until its engine is no manager", "node", nodeID, "update_unavailable", err != nil)
		if werr := s.waitSelfDemoted(ctx, nodeID, err); werr != nil {
			return fmt.Errorf("failed to wait for demotion of the endpoint's own node %s: %w", nodeID, werr)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to demote node %s: %w", nodeID, err)
	}
	err = s.poll(ctx, func() (bool, error) {
		n, _, err := s.cli.NodeInspectWithRaw(ctx, nodeID)
		if err != nil {
			return false, classify(err)
		}
		return n.ManagerStatus == nil && n.Spec.Role == swarm.NodeRoleWorker, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for demotion of node %s: %w", nodeID, err)
	}
	return nil
}

// waitSelfDemoted polls the endpoint's engine until it reports that it is
// no manager any more. updateErr is the update's ErrUnavailable (nil when
// the update was accepted): then, once the engine answers as a manager
// again and its node's spec still says manager, the update did not take and
// updateErr is returned. Info errors while the engine reconfigures are
// waited out.
func (s *Swarm) waitSelfDemoted(ctx context.Context, id string, updateErr error) error {
	return s.poll(ctx, func() (bool, error) {
		info, err := s.cli.Info(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, nil // the engine is busy stepping down
		}
		if info.Swarm.LocalNodeState == swarm.LocalNodeStateActive && !info.Swarm.ControlAvailable {
			return true, nil
		}
		if updateErr == nil || !info.Swarm.ControlAvailable {
			return false, nil
		}
		n, _, err := s.cli.NodeInspectWithRaw(ctx, id)
		if err != nil {
			return false, nil // its control socket is going away
		}
		if n.Spec.Role == swarm.NodeRoleManager {
			return false, updateErr // the demotion was never recorded
		}
		return false, nil
	})
}

// Promote promotes a worker and waits until it is a reachable manager.
func (s *Swarm) Promote(ctx context.Context, nodeID string) error {
	manager := providers.RoleManager
	if err := s.updateNode(ctx, nodeID, providers.NodeChange{Role: &manager}); err != nil {
		return fmt.Errorf("failed to promote node %s: %w", nodeID, err)
	}
	err := s.poll(ctx, func() (bool, error) {
		n, _, err := s.cli.NodeInspectWithRaw(ctx, nodeID)
		if err != nil {
			return false, classify(err)
		}
		return n.ManagerStatus != nil && n.ManagerStatus.Reachability == swarm.ReachabilityReachable, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for promotion of node %s: %w", nodeID, err)
	}
	return nil
}

// WaitDrained polls the node's tasks (one TaskList per tick) until none is
// desired running and none is still at or before running. The caller bounds
// the wait with ctx.
func (s *Swarm) WaitDrained(ctx context.Context, nodeID string) error {
	err := s.poll(ctx, func() (bool, error) {
		tasks, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("node", nodeID))})
		if err != nil {
			return false, classify(err)
		}
		return Drained(tasks), nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for node %s to drain: %w", nodeID, err)
	}
	return nil
}

// Drained reports whether no task in tasks is desired running and none is
// still in a state at or before running.
func Drained(tasks []swarm.Task) bool {
	for _, t := range tasks {
		if t.DesiredState == swarm.TaskStateRunning || !terminal(t.Status.State) {
			return false
		}
	}
	return true
}

func terminal(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
		swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

// RemoveNode removes a node from the swarm. Without force, Swarm refuses a
// node that is not down (ErrNodeNotDown, "is not down and can't be
// removed"; seen for unknown nodes on the lab's engines); a manager must be
// demoted first, force or not (ErrNodeIsManager).
func (s *Swarm) RemoveNode(ctx context.Context, nodeID string, force bool) error {
	if err := s.cli.NodeRemove(ctx, nodeID, swarm.NodeRemoveOptions{Force: force}); err != nil {
		return fmt.Errorf("failed to remove node %s: %w", nodeID, classify(err))
	}
	return nil
}

// poll calls done once at once and then once per tick until it reports
// true, fails, or ctx ends.
func (s *Swarm) poll(ctx context.Context, done func() (bool, error)) error {
	ticks, stop := s.opts.ticker()
	defer stop()
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticks:
		}
	}
}

// InitOptions tune a new swarm.
type InitOptions struct {
	// ListenAddr defaults to 0.0.0.0:2377.
	ListenAddr string
	// HeartbeatPeriod is the dispatcher heartbeat (a node is Down after
	// about three missed heartbeats); zero keeps Swarm's default (5s).
	HeartbeatPeriod time.Duration
}

// Init makes the endpoint's engine the first manager of a new swarm,
// advertising advertiseAddr, and returns its node ID.
func (s *Swarm) Init(ctx context.Context, advertiseAddr string, o InitOptions) (string, error) {
	req := swarm.InitRequest{ListenAddr: o.ListenAddr, AdvertiseAddr: advertiseAddr}
	if req.ListenAddr == "" {
		req.ListenAddr = "0.0.0.0:2377"
	}
	req.Spec.Dispatcher.HeartbeatPeriod = o.HeartbeatPeriod
	id, err := s.cli.SwarmInit(ctx, req)
	if err != nil {
		return "", fmt.Errorf("failed to init swarm: %w", classify(err))
	}
	s.setSelf(id)
	return id, nil
}

// Join makes the endpoint's engine join the swarm at managerAddr
// (host:port) with token. Swarm answers "Timeout was reached before node
// joined" after 20 s while the join goes on; Join reports that as success
// (await the node through Observe). The token never appears in errors.
func (s *Swarm) Join(ctx context.Context, managerAddr, token, advertiseAddr string) error {
	err := s.cli.SwarmJoin(ctx, swarm.JoinRequest{
		ListenAddr: "0.0.0.0:2377", AdvertiseAddr: advertiseAddr,
		RemoteAddrs: []string{managerAddr}, JoinToken: token,
	})
	if err != nil {
		e := classify(err)
		var de *daemonError
		if errors.As(e, &de) && strings.Contains(de.msg, "Timeout was reached before node joined") {
			return nil
		}
		return fmt.Errorf("failed to join swarm at %s: %w", managerAddr, e)
	}
	return nil
}

// FindLeader connects to each endpoint in turn and returns a Swarm on the
// first one whose node is the leader. The others are closed.
func FindLeader(ctx context.Context, endpoints []string, opt ...Option) (*Swarm, error) {
	var errs []error
	for _, ep := range endpoints {
		s, err := New(ep, opt...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok, err := s.IsLeader(ctx)
		if ok {
			return s, nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
		}
		s.Close()
	}
	return nil, fmt.Errorf("failed to find the swarm leader among %d manager endpoint(s): %w", len(endpoints), errors.Join(append(errs, errors.New("no endpoint is the leader"))...))
}

// toNode translates a Swarm node into the neutral type.
func toNode(n swarm.Node) providers.Node {
	out := providers.Node{
		ID:           n.ID,
		Hostname:     n.Description.Hostname,
		Role:         providers.Role(n.Spec.Role),
		Availability: providers.Availability(n.Spec.Availability),
		State:        providers.NodeState(n.Status.State),
		Addr:         n.Status.Addr,
		EngineLabels: maps.Clone(n.Description.Engine.Labels),
		Labels:       maps.Clone(n.Spec.Labels),
		Version:      n.Version.Index,
		CreatedAt:    n.CreatedAt,
	}
	if out.State == providers.NodeDown {
		// Marking a node Down is an update of the node object: while it
		// stays Down, its UpdatedAt is when that happened (LAB.md).
		out.DownSince = n.UpdatedAt.UTC()
	}
	if m := n.ManagerStatus; m != nil {
		out.ManagerAddr = m.Addr
		out.Reachability = providers.Reachability(m.Reachability)
		out.Leader = m.Leader
	}
	return out
}
