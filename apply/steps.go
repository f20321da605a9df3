package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// mutating reports whether a step changes the world (and so needs the
// leader). Waits only observe.
func mutating(a plan.Action) bool {
	return a != plan.ActionAwaitJoin && a != plan.ActionAwaitDrained && a != plan.ActionAwaitDeregistered
}

// step runs one step: the leadership fence, then its single concern.
func (e *executor) step(ctx context.Context, s plan.Step) ([]string, error) {
	if mutating(s.Action) {
		defer e.forgetObservation()
	}
	if mutating(s.Action) && !e.beforeSwarm(s) {
		if err := e.fence(ctx); err != nil {
			return nil, err
		}
	}
	switch s.Action {
	case plan.ActionLaunch:
		return e.launch(ctx, s)
	case plan.ActionAwaitJoin:
		return nil, e.awaitJoin(ctx, s)
	case plan.ActionLabel:
		return nil, e.label(ctx, s)
	case plan.ActionDrain:
		return nil, e.drain(ctx, s)
	case plan.ActionAwaitDrained:
		return nil, e.awaitDrained(ctx, s)
	case plan.ActionDemote:
		return nil, e.onNode(ctx, s, func(sw providers.Swarm, id string) error {
			st, err := sw.Observe(ctx)
			if err != nil {
				return err
			}
			// Demote waits until the demotion took effect, the endpoint's
			// own node included (its engine then reports it is no manager).
			if err := sw.Demote(ctx, id); err != nil {
				return err
			}
			if id == st.SelfID {
				e.mu.Lock()
				e.handedOver = true
				e.mu.Unlock()
			}
			return nil
		})
	case plan.ActionPromote:
		return nil, e.onNode(ctx, s, func(sw providers.Swarm, id string) error {
			return sw.Promote(ctx, id)
		})
	case plan.ActionRemoveNode:
		return nil, e.removeNode(ctx, s)
	case plan.ActionTerminate:
		return nil, e.terminate(ctx, s)
	case plan.ActionRotateJoinToken:
		return nil, e.rotate(ctx, s)
	}
	if ok, err := e.environmentStep(ctx, s); ok {
		return nil, err
	}
	return nil, fmt.Errorf("unknown action %q", s.Action)
}

// fence checks that the endpoint's node is the leader now and, when the
// apply runs under a lease, that the lease is still held (Deps.Lease). It
// runs before every mutating call, also right before one that follows a
// long wait. After a deliberate hand-over (this apply demoted its own node)
// it moves to the new leader when Deps.FindLeader allows, else it stops.
func (e *executor) fence(ctx context.Context) error {
	if err := e.leaderFence(ctx); err != nil {
		return err
	}
	if e.deps.Lease != nil {
		return e.deps.Lease.Check(ctx)
	}
	return nil
}

func (e *executor) leaderFence(ctx context.Context) error {
	err := CheckLeader(ctx, e.currentSwarm())
	if err == nil {
		return nil
	}
	var nl *NotLeaderError
	e.mu.Lock()
	handedOver := e.handedOver
	e.mu.Unlock()
	if !handedOver || !errors.As(err, &nl) {
		return err
	}
	nl.HandedOver = true
	if e.deps.FindLeader == nil {
		return nl
	}
	e.handoverMu.Lock()
	defer e.handoverMu.Unlock()
	if CheckLeader(ctx, e.currentSwarm()) == nil {
		return nil // another step moved already
	}
	var found providers.Swarm
	perr := e.poll(ctx, e.joinTimeout(), func() (bool, error) {
		sw, err := e.deps.FindLeader(ctx)
		if err != nil || sw == nil {
			return false, nil // an election may be under way
		}
		if CheckLeader(ctx, sw) != nil {
			return false, nil
		}
		found = sw
		return true, nil
	})
	if perr != nil {
		return nl
	}
	if e.deps.Lease != nil {
		if err := e.deps.Lease.MoveTo(ctx, found); err != nil {
			return err
		}
	}
	e.mu.Lock()
	e.swarm, e.handedOver = found, false
	e.mu.Unlock()
	e.deps.Logger.Info("continuing through the new leader after demoting this endpoint's node")
	return nil
}

// CheckLeader returns nil when sw's node is the Swarm leader now, and a
// *NotLeaderError (naming the leader's address when the endpoint knows it)
// otherwise, including when the check itself fails.
func CheckLeader(ctx context.Context, sw providers.Swarm) error {
	if sw == nil {
		return &NotLeaderError{Cause: errors.New("no Swarm endpoint")}
	}
	ok, err := sw.IsLeader(ctx)
	if ok && err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	nl := &NotLeaderError{Cause: err}
	if st, oerr := sw.Observe(ctx); oerr == nil {
		nl.LeaderAddr = st.LeaderAddr
	}
	return nl
}

// groupInstance returns the instance spec and default role of a group.
func groupInstance(c schema.Cluster, group string) (schema.Instance, providers.Role, error) {
	if group == schema.ManagersGroup {
		return c.Managers.Instance, providers.RoleManager, nil
	}
	if name, ok := strings.CutPrefix(group, "workers/"); ok {
		if g, ok := c.Workers[name]; ok {
			return g.Instance, providers.RoleWorker, nil
		}
	}
	return schema.Instance{}, "", fmt.Errorf("group %q is not in the spec", group)
}

// managerAddr picks the address new nodes join through: the leader's, else
// any reachable manager's.
func managerAddr(st providers.SwarmState) string {
	if st.LeaderAddr != "" {
		return st.LeaderAddr
	}
	for _, n := range st.Nodes {
		if n.Leader && n.ManagerAddr != "" {
			return n.ManagerAddr
		}
	}
	for _, n := range st.Nodes {
		if n.Role == providers.RoleManager && n.Reachability == providers.Reachable && n.ManagerAddr != "" {
			return n.ManagerAddr
		}
	}
	return ""
}

// InstanceName is the Name tag of a group's instances.
func InstanceName(cluster, group string) string {
	return cluster + "-" + strings.ReplaceAll(group, "/", "-")
}

func (e *executor) launch(ctx context.Context, s plan.Step) ([]string, error) {
	c := e.plan.Desired
	spec, role, err := groupInstance(c, s.Group)
	if err != nil {
		return nil, fmt.Errorf("failed to launch: %w", err)
	}
	if s.Role != "" {
		role = s.Role
	}
	count := s.Count
	if count < 1 {
		count = 1
	}
	in := UserDataInput{Cluster: c.Name, Group: s.Group, Role: role, Init: s.Init, Provider: c.Provider.Kind()}
	if s.Init && c.Daemon != nil && c.Daemon.Enabled {
		in.Daemon = c.Daemon
	}
	if s.Init && count != 1 {
		return nil, fmt.Errorf("failed to launch: the launch that initialises the Swarm must start exactly one manager, not %d", count)
	}
	if !s.Init {
		sw := e.currentSwarm()
		if sw == nil {
			return nil, errors.New("failed to launch: no Swarm endpoint to join through")
		}
		st, err := sw.Observe(ctx)
		if err != nil {
			return nil, fmt.Errorf("no address to join through: %w", err)
		}
		in.ManagerAddr = managerAddr(st)
		if in.ManagerAddr == "" {
			return nil, errors.New("failed to launch: no reachable manager address to join through")
		}
		tokens, err := sw.JoinTokens(ctx)
		if err != nil {
			return nil, err
		}
		e.addSecret(tokens.Worker)
		e.addSecret(tokens.Manager)
		in.JoinToken = tokens.Worker
		if role == providers.RoleManager {
			in.JoinToken = tokens.Manager
		}
	}
	ud, err := RenderUserData(c.UserData, in)
	if err != nil {
		return nil, err
	}
	sgs := spec.SecurityGroups
	if id, err := e.managedSecurityGroup(ctx); err != nil {
		return nil, fmt.Errorf("failed to launch: %w", err)
	} else if id != "" {
		sgs = append(slices.Clone(sgs), id)
	}
	req := providers.LaunchRequest{
		Cluster:         c.Name,
		Group:           s.Group,
		Count:           count,
		Image:           spec.Image,
		InstanceType:    spec.Type,
		Subnets:         spec.Subnets,
		SecurityGroups:  sgs,
		InstanceProfile: spec.InstanceProfile,
		KeyName:         spec.KeyName,
		Tags: map[string]string{
			providers.TagCluster: c.Name,
			providers.TagGroup:   s.Group,
			providers.TagConfig:  s.Config,
			providers.TagName:    InstanceName(c.Name, s.Group),
		},
		UserData:         ud,
		IdempotencyToken: IdempotencyToken(e.plan.Observation.Fingerprint, s.ID),
	}
	insts, err := launchLive(ctx, e.deps.Cloud, req)
	if err != nil {
		return nil, err // the cloud names the launch
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("failed to launch %d instance(s) of %s: the cloud returned none", count, s.Group)
	}
	e.setLaunched(s.ID, insts)
	ids := make([]string, len(insts))
	for i, in := range insts {
		ids[i] = in.ID
	}
	e.deps.Logger.Info("launched", "step", s.ID, "group", s.Group, "instances", strings.Join(ids, ","))
	if s.Init {
		if e.deps.Dialer == nil {
			return ids, fmt.Errorf("the first manager %s is launched and initialises the Swarm, but this endpoint cannot reach its engine: "+
				"run `swarmsync apply --auto` on that manager, or set DOCKER_HOST to its engine and apply again", insts[0].ID)
		}
		sw, err := e.deps.Dialer.Dial(ctx, insts[0])
		if err != nil {
			return ids, fmt.Errorf("failed to reach the new first manager %s: %w", insts[0].ID, err)
		}
		e.mu.Lock()
		e.swarm = sw
		e.mu.Unlock()
		// Nothing could hold a lease on a Swarm that did not exist (its
		// launch relies on the launch token instead): take it now.
		if e.deps.Lease != nil && !e.deps.Lease.Held() {
			if err := e.awaitLease(ctx, sw); err != nil {
				return ids, err
			}
		}
	}
	return ids, nil
}

// targetInstances are the instance ids a step is about: its own, or those
// its launch step started.
func (e *executor) targetInstances(s plan.Step) ([]string, error) {
	if s.Instance != "" {
		return []string{s.Instance}, nil
	}
	if s.LaunchStep == "" {
		return nil, fmt.Errorf("step %s names no instance and no launch step", s.ID)
	}
	insts := e.launchedBy(s.LaunchStep)
	if len(insts) == 0 {
		return nil, fmt.Errorf("launch step %s started no instances in this apply", s.LaunchStep)
	}
	ids := make([]string, len(insts))
	for i, in := range insts {
		ids[i] = in.ID
	}
	return ids, nil
}

// nodesByInstance maps instance ids to nodes by engine label.
func nodesByInstance(st providers.SwarmState) map[string]providers.Node {
	m := map[string]providers.Node{}
	for _, n := range st.Nodes {
		if id := n.InstanceID(); id != "" {
			// Prefer a live node over a stale Down one of the same instance.
			if old, ok := m[id]; ok && old.State == providers.NodeReady {
				continue
			}
			m[id] = n
		}
	}
	return m
}

// poll calls check every PollInterval until it reports done, it fails, or
// timeout passes on the injected clock.
func (e *executor) poll(ctx context.Context, timeout time.Duration, check func() (bool, error)) error {
	deadline := e.deps.Clock.Now().Add(timeout)
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if !e.deps.Clock.Now().Before(deadline) {
			return errTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.deps.Clock.After(e.deps.PollInterval):
		}
	}
}

var errTimeout = errors.New("timed out")

func (e *executor) joinTimeout() time.Duration {
	if d := e.plan.Desired.Update.JoinTimeout.Duration; d > 0 {
		return d
	}
	return DefaultJoinTimeout
}

func (e *executor) drainTimeout() time.Duration {
	if d := e.plan.Desired.Update.DrainTimeout.Duration; d > 0 {
		return d
	}
	return DefaultDrainTimeout
}

func (e *executor) awaitJoin(ctx context.Context, s plan.Step) error {
	ids, err := e.targetInstances(s)
	if err != nil {
		return fmt.Errorf("failed to await join: %w", err)
	}
	wantManager := s.Group == schema.ManagersGroup || s.Role == providers.RoleManager
	var missing []string
	err = e.poll(ctx, e.joinTimeout(), func() (bool, error) {
		sw := e.currentSwarm()
		if sw == nil {
			return false, errors.New("no Swarm endpoint")
		}
		st, err := e.observeShared(ctx, sw)
		if err != nil {
			// The endpoint may not be up yet (a new swarm); keep waiting.
			e.deps.Logger.Debug("observe while awaiting join", "step", s.ID, "error", err.Error())
			missing = ids
			return false, nil
		}
		byInst := nodesByInstance(st)
		missing = missing[:0:0]
		for _, id := range ids {
			n, ok := byInst[id]
			if !ok || n.State != providers.NodeReady ||
				(wantManager && (n.Role != providers.RoleManager || n.Reachability != providers.Reachable)) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			e.waiting(s, fmt.Sprintf("%d of %d new instances to join: %s", len(missing), len(ids), strings.Join(missing, ", ")))
		}
		return len(missing) == 0, nil
	})
	if errors.Is(err, errTimeout) {
		what := "Ready nodes"
		if wantManager {
			what = "reachable managers"
		}
		return fmt.Errorf("instance(s) %s did not become %s in the swarm within joinTimeout %s", strings.Join(missing, ", "), what, e.joinTimeout())
	}
	return err
}

// targetNodes resolves the nodes a step acts on: its node, or the nodes of
// its instance(s).
func (e *executor) targetNodes(ctx context.Context, s plan.Step) ([]string, error) {
	if s.Node != "" {
		return []string{s.Node}, nil
	}
	ids, err := e.targetInstances(s)
	if err != nil {
		return nil, err
	}
	sw := e.currentSwarm()
	if sw == nil {
		return nil, errors.New("no Swarm endpoint")
	}
	st, err := sw.Observe(ctx)
	if err != nil {
		return nil, err
	}
	byInst := nodesByInstance(st)
	var nodes []string
	for _, id := range ids {
		n, ok := byInst[id]
		if !ok {
			return nil, fmt.Errorf("instance %s has no node in the swarm", id)
		}
		nodes = append(nodes, n.ID)
	}
	return nodes, nil
}

func (e *executor) onNode(ctx context.Context, s plan.Step, f func(providers.Swarm, string) error) error {
	nodes, err := e.targetNodes(ctx, s)
	if err != nil {
		return err
	}
	sw := e.currentSwarm()
	for i, n := range nodes {
		if i > 0 {
			if err := e.fence(ctx); err != nil {
				return err
			}
		}
		if err := f(sw, n); err != nil {
			return err
		}
	}
	return nil
}

func (e *executor) label(ctx context.Context, s plan.Step) error {
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[providers.NodeLabelGroup] = s.Group
	change := providers.NodeChange{Labels: labels}
	if s.Availability != "" {
		a := s.Availability
		change.Availability = &a
	}
	return e.onNode(ctx, s, func(sw providers.Swarm, id string) error {
		return sw.UpdateNode(ctx, id, change)
	})
}

func (e *executor) drain(ctx context.Context, s plan.Step) error {
	a := providers.AvailabilityDrain
	return e.onNode(ctx, s, func(sw providers.Swarm, id string) error {
		return sw.UpdateNode(ctx, id, providers.NodeChange{Availability: &a})
	})
}

// awaitDrained waits, bounded by drainTimeout on the injected clock, by
// calling the provider's blocking WaitDrained in slices of a few poll
// intervals.
func (e *executor) awaitDrained(ctx context.Context, s plan.Step) error {
	nodes, err := e.targetNodes(ctx, s)
	if err != nil {
		return err
	}
	sw := e.currentSwarm()
	slice := 5 * e.deps.PollInterval
	for _, id := range nodes {
		e.waiting(s, fmt.Sprintf("node %s to stop its tasks", id))
		err := e.poll(ctx, e.drainTimeout(), func() (bool, error) {
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-e.deps.Clock.After(slice):
					cancel()
				case <-sctx.Done():
				}
			}()
			err := sw.WaitDrained(sctx, id)
			if err == nil {
				return true, nil
			}
			if ctx.Err() == nil && sctx.Err() != nil {
				return false, nil // slice over: check the deadline, go on
			}
			return false, err
		})
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("node %s still runs tasks after drainTimeout %s", id, e.drainTimeout())
		}
		if err != nil {
			return fmt.Errorf("failed to await drain of node %s: %w", id, err)
		}
		mover, ok := sw.(TaskMover)
		if !ok {
			continue
		}
		e.waiting(s, fmt.Sprintf("the tasks of node %s to run elsewhere", id))
		err = e.poll(ctx, e.drainTimeout(), func() (bool, error) {
			moved, err := mover.TasksMoved(ctx, id)
			if err != nil {
				// A transient API error: keep waiting within the bound.
				e.deps.Logger.Debug("checking moved tasks", "node", id, "error", err.Error())
				return false, nil
			}
			return moved, nil
		})
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("the tasks drained from node %s are not running elsewhere after drainTimeout %s", id, e.drainTimeout())
		}
		if err != nil {
			return fmt.Errorf("failed to await the tasks of node %s elsewhere: %w", id, err)
		}
	}
	return nil
}

func (e *executor) removeNode(ctx context.Context, s plan.Step) error {
	sw := e.currentSwarm()
	var ids []string
	if s.Node == "" {
		var err error
		if ids, err = e.targetInstances(s); err != nil {
			return err
		}
	}
	find := func() (providers.Node, bool, error) {
		st, err := e.observeShared(ctx, sw)
		if err != nil {
			return providers.Node{}, false, err
		}
		if s.Node != "" {
			for _, n := range st.Nodes {
				if n.ID == s.Node {
					return n, true, nil
				}
			}
			return providers.Node{}, false, nil
		}
		n, ok := nodesByInstance(st)[ids[0]]
		return n, ok, nil
	}
	n, ok, err := find()
	if err != nil {
		return err
	}
	if !ok {
		return nil // already gone
	}
	if s.Ghost {
		return e.removeGhost(ctx, sw, s, n)
	}
	if n.State != providers.NodeDown {
		gone, err := e.instanceGone(ctx, s.Instance, n.InstanceID())
		if err != nil {
			return err
		}
		if gone {
			// Its machine is gone: wait until the Swarm sees it Down, so the
			// removal is not a forced one of a node that may still talk.
			e.waiting(s, fmt.Sprintf("the Swarm to see node %s Down (its instance is gone)", n.ID))
			err := e.poll(ctx, e.drainTimeout(), func() (bool, error) {
				var n2 providers.Node
				var err error
				n2, ok, err = find()
				if err != nil || !ok {
					return !ok, err
				}
				n = n2
				// Only Down: a node may be unknown or disconnected
				// first, and Swarm removes only a Down node without force.
				return n.State == providers.NodeDown, nil
			})
			if errors.Is(err, errTimeout) {
				return fmt.Errorf("node %s is still %s, not Down, %s after its instance was terminated", n.ID, n.State, e.drainTimeout())
			}
			if err != nil {
				return err
			}
			if !ok {
				return nil // removed meanwhile
			}
			// The wait may have been long: leadership and the lease again.
			if err := e.fence(ctx); err != nil {
				return err
			}
		}
	}
	if n.ID == "" {
		return nil
	}
	// Swarm removes only a Down node without force; a node the plan
	// removes whose instance still runs (not Down) needs it.
	err = sw.RemoveNode(ctx, n.ID, n.State != providers.NodeDown)
	if errors.Is(err, providers.ErrNodeNotFound) {
		return nil // it vanished meanwhile: removed all the same
	}
	return err
}

// removeGhost removes a node entry no engine ever described (plan's
// ghost rule). One that an engine described since the observation (a join
// that completed after all) is left to the next pass, which sees it as it
// is now. A Down ghost goes without force; an unknown one needs force
// (Swarm refused the removal of an unknown node without force on the lab's
// engines) — it has no engine that could still talk.
func (e *executor) removeGhost(ctx context.Context, sw providers.Swarm, s plan.Step, n providers.Node) error {
	if !plan.Undescribed(&n) || n.Role != providers.RoleWorker {
		e.deps.Logger.Info("node is no longer a join that never completed: left for the next pass", "step", s.ID, "node", n.ID, "state", string(n.State), "hostname", n.Hostname)
		return nil
	}
	err := sw.RemoveNode(ctx, n.ID, n.State != providers.NodeDown)
	if errors.Is(err, providers.ErrNodeNotFound) {
		return nil
	}
	return err
}

// instanceGone reports whether the node's instance no longer lives.
func (e *executor) instanceGone(ctx context.Context, ids ...string) (bool, error) {
	id := ""
	for _, x := range ids {
		if x != "" {
			id = x
			break
		}
	}
	if id == "" {
		return false, nil
	}
	insts, err := e.deps.Cloud.Instances(ctx, e.plan.Cluster)
	if err != nil {
		return false, err
	}
	for _, in := range insts {
		if in.ID == id {
			return !in.State.Live(), nil
		}
	}
	return true, nil
}

func (e *executor) terminate(ctx context.Context, s plan.Step) error {
	ids, err := e.targetInstances(s)
	if err != nil {
		return fmt.Errorf("failed to terminate: %w", err)
	}
	return e.deps.Cloud.Terminate(ctx, e.plan.Cluster, ids)
}

// rotate rotates the join tokens the step names. Through a Swarm that can
// record (providers/docker), every rotation goes through RotateAndRecord:
// a rotation of both tokens is recorded as the swarm label
// providers.SwarmLabelJoinTokensRotated (at least the step's
// RecordRotatedAt, and no earlier than every node's creation), which is
// what the planner reads back to tell whether a node joined after the last
// rotation (joinTokens.rotateAfterJoin) and whether schedule.rotateJoinTokens
// is due. A step that carries a time to record needs such a Swarm: without
// the record every pass would rotate again.
func (e *executor) rotate(ctx context.Context, s plan.Step) error {
	if !s.RotateWorker && !s.RotateManager {
		return errors.New("failed to rotate join tokens: the step names neither the worker nor the manager token")
	}
	sw := e.currentSwarm()
	rec, ok := sw.(providers.JoinTokenRecorder)
	if !ok && !s.RecordRotatedAt.IsZero() {
		return fmt.Errorf("failed to rotate join tokens: the Swarm endpoint (%T) cannot record the rotation as the swarm label %s", sw, providers.SwarmLabelJoinTokensRotated)
	}
	if !ok {
		return sw.RotateJoinTokens(ctx, s.RotateWorker, s.RotateManager)
	}
	return rec.RotateAndRecord(ctx, providers.JoinTokenRotation{Worker: s.RotateWorker, Manager: s.RotateManager, RecordAt: s.RecordRotatedAt})
}

// maxTokenGenerations bounds how many dead launches of one step's token
// launchLive steps over.
const maxTokenGenerations = 8

// launchLive launches with req's idempotency token. The token is derived
// from the observation and the step, so the same situation gives the same
// token: a re-run after a crash gets the instances it already launched.
// But the same situation can come back after those instances died, or
// with other launch parameters (a new swarm's join token) (an
// empty cluster destroyed and bootstrapped again, within the cloud's token
// lifetime of a day or more), and the cloud then answers with the dead
// instances or refuses the token. So when every instance a token returns
// has gone, or the token was used with other parameters, the next
// token of a fixed sequence (token, token-2, token-3, ...) is tried: a
// re-run walks the same sequence and finds the live launch it made before.
func launchLive(ctx context.Context, cloud providers.Cloud, req providers.LaunchRequest) ([]providers.Instance, error) {
	base := req.IdempotencyToken
	for gen := 1; ; gen++ {
		if gen > 1 {
			req.IdempotencyToken = fmt.Sprintf("%s-%d", base, gen)
		}
		insts, err := cloud.Launch(ctx, req)
		reused := errors.Is(err, providers.ErrTokenReused) || apiErrorCode(err) == "IdempotentParameterMismatch"
		if !reused && (err != nil || len(insts) == 0 || anyAlive(insts)) {
			return insts, err
		}
		if gen == maxTokenGenerations {
			return nil, fmt.Errorf("the cloud returned only terminated instances for %d idempotency tokens of this step", gen)
		}
	}
}

func anyAlive(insts []providers.Instance) bool {
	for _, in := range insts {
		if in.State != providers.StateTerminated && in.State != providers.StateShuttingDown {
			return true
		}
	}
	return false
}

// apiErrorCode is the error code of a cloud API error (EC2's
// IdempotentParameterMismatch, say), or "".
func apiErrorCode(err error) string {
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		return coded.ErrorCode()
	}
	return ""
}

// awaitLease takes the lease on a Swarm that is just being initialised: its
// engine may not answer as a manager yet, so it retries within joinTimeout;
// a lease held by another process fails at once.
func (e *executor) awaitLease(ctx context.Context, sw providers.Swarm) error {
	var last error
	err := e.poll(ctx, e.joinTimeout(), func() (bool, error) {
		last = e.deps.Lease.Acquire(ctx, sw)
		if errors.Is(last, providers.ErrLeaseHeld) {
			return false, last
		}
		return last == nil, nil
	})
	if errors.Is(err, errTimeout) {
		return fmt.Errorf("failed to take the apply lease on the new Swarm within joinTimeout %s: %w", e.joinTimeout(), last)
	}
	return err
}
