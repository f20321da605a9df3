package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// Compute returns the plan that brings observed to desired. It is pure and
// deterministic: identical inputs give byte-identical plan JSON. "Now" is
// observed.TakenAt. It returns a *RefusedError when the plan would break a
// blast-radius rule of the spec.
func Compute(desired schema.Cluster, observed Observed, src Source) (*Plan, error) {
	if observed.Cluster != "" && observed.Cluster != desired.Name {
		return nil, fmt.Errorf("failed to plan: the observation is of cluster %q, the spec is cluster %q", observed.Cluster, desired.Name)
	}
	switch desired.Managers.Count {
	case 1, 3, 5, 7:
	default:
		return nil, fmt.Errorf("failed to plan cluster %q: managers.count is %d, want 1, 3, 5 or 7", desired.Name, desired.Managers.Count)
	}
	obs := observed.Canonical()
	win, err := disruptionWindows(desired.Schedule.DisruptionWindows, obs.TakenAt)
	if err != nil {
		return nil, fmt.Errorf("failed to plan cluster %q: %w", desired.Name, err)
	}
	b := newBuilder(desired, obs)
	b.hold, b.nextWindow = !win.open, win.next
	if b.rotationAt, b.rotationDue, err = rotationDue(desired.Schedule.RotateJoinTokens, obs.Swarm, obs.TakenAt); err != nil {
		return nil, fmt.Errorf("failed to plan cluster %q: %w", desired.Name, err)
	}
	p := &Plan{
		FormatVersion: PlanFormatVersion,
		Cluster:       desired.Name,
		Source:        src,
		Desired:       desired,
		Observation: ObservationSummary{
			Fingerprint: fingerprint(obs),
			Instances:   liveInstances(obs.Instances),
			Nodes:       len(obs.Swarm.Nodes),
			Managers:    b.c.raftMembers,
			Leader:      b.c.leader,
			TakenAt:     obs.TakenAt,
		},
	}
	if err := b.preflight(); err != nil {
		return nil, err
	}
	if err := b.build(); err != nil {
		return nil, err
	}
	p.Steps = b.steps
	if p.Steps == nil {
		p.Steps = []Step{}
	}
	p.Notes = b.notes
	p.Held = b.downHeld
	p.LaunchStopped = b.stopped
	p.Summary = map[Action]int{}
	for _, s := range p.Steps {
		p.Summary[s.Action]++
	}
	return p, nil
}

// builder accumulates steps while tracking the raft membership, so every
// raft change is checked against quorum as it is planned.
type builder struct {
	d     schema.Cluster
	o     Observed
	now   time.Time
	c     classified
	steps []Step
	ids   map[string]bool
	notes []string
	// child marks steps that another step depends on (for leaves()).
	child map[string]bool

	members, reach int    // raft membership as planned so far
	leader         string // current leader node id as planned so far

	// budget is what is left of safety.maxRemovalsPerApply; reserved is
	// the number of self-healing and spec-requested removals not planned
	// yet, which replacements may not use (see budget.go).
	budget, reserved int
	healDeferred     int
	replaceDeferred  int

	digests map[string]string // ConfigDigest per group
	wants   map[string]wantedState

	launchSeq     map[string]int
	joins         []string // await-join step ids
	workerJoined  bool
	managerJoined bool
	batch         map[string]int // last rolling-replacement batch per group

	// hold is set when the spec declares disruption windows and none is
	// open at now: disruptive changes are held back (see allow).
	hold       bool
	nextWindow time.Time
	held       int // disruptive changes held back

	// downHeld are the nodes left alone within update.downGrace.
	downHeld []HeldNode
	// stopped are the groups that stop launching (joinfail.go).
	stopped []LaunchStop

	// networkReady is the step every launch waits for: the managed
	// security group and its rules ("" when nothing is planned for it).
	networkReady string
	// managedSGPending plans the managed security group (set by the
	// preflight, run by networkSteps).
	managedSGPending func()
	// leaving are the instances planned to leave (no register-targets).
	leaving map[string]bool

	// rotationDue is set when schedule.rotateJoinTokens is due at now;
	// rotationAt is the activation that made it due (see rotation.go).
	rotationDue bool
	rotationAt  time.Time
}

func newBuilder(d schema.Cluster, o Observed) *builder {
	b := &builder{d: d, o: o, now: o.TakenAt, ids: map[string]bool{}, child: map[string]bool{},
		launchSeq: map[string]int{}, leaving: map[string]bool{}, batch: map[string]int{}, digests: map[string]string{}, wants: map[string]wantedState{}}
	b.classify()
	return b
}

// build plans the whole cluster: the managers' chain, every worker group,
// the out-of-date leader and the join-token rotation last.
func (b *builder) build() error {
	c := &b.c
	b.members, b.reach, b.leader = c.raftMembers, c.raftReachable, c.leader
	if c.noSwarm {
		live := liveCount(b.o.Instances)
		if live == 0 {
			if _, err := b.intentional(); err != nil {
				return err
			}
			b.networkSteps()
			b.bootstrap()
			return nil
		}
		b.note("No Swarm is reachable although %d owned instances exist: nothing is planned. If the first manager is still starting, wait for it; otherwise check the Docker endpoint (DOCKER_HOST), or destroy the cluster and apply again.", live)
		return nil
	}
	if c.raftMembers == 0 || c.raftReachable < quorum(c.raftMembers) {
		b.note("Quorum is lost: %d of %d managers are reachable, %d are needed. swarmsync plans nothing until quorum is back. If the unreachable managers cannot come back, recover by hand: on one surviving manager run `docker swarm init --force-new-cluster --advertise-addr <its address>`, then run swarmsync again to replace the lost managers.", c.raftReachable, c.raftMembers, quorum(c.raftMembers))
		return nil
	}
	b.networkSteps()
	for _, name := range b.sortedGroups() {
		if _, declared := desiredCount(b.d, name); declared {
			b.joinFailures(c.groups[name])
		}
	}
	intentional, err := b.intentional()
	if err != nil {
		return err
	}
	b.initBudget(intentional)
	if c.leader == "" {
		b.note("No reachable manager is the leader in this observation (an election in progress?): nothing is planned until a leader is known, since every change goes through it.")
		return nil
	}
	b.managers()
	for _, name := range b.sortedGroups() {
		if name != schema.ManagersGroup {
			b.workers(name)
		}
	}
	b.removeGhosts()
	b.leaderLast()
	b.environment()
	b.foreignNotes()
	b.deferredNotes()
	return nil
}

// bootstrap plans an empty cluster: the first manager initialises the
// Swarm, the other managers join one at a time, the workers join once the
// Swarm exists.
func (b *builder) bootstrap() {
	var first string
	prev := ""
	for i := 0; i < b.d.Managers.Count; i++ {
		reason := "join the Swarm as a manager (one raft change at a time)"
		if i == 0 {
			reason = "initialise the Swarm: the cluster has no manager"
		}
		prev = b.launch(schema.ManagersGroup, 1, i == 0, reason, 0, prev)
		if i == 0 {
			first = prev
		}
	}
	for _, name := range slices.Sorted(maps.Keys(b.d.Workers)) {
		if n := b.d.Workers[name].Count; n > 0 {
			b.launch(schema.WorkerGroupName(name), n, false, fmt.Sprintf("the group has 0 of %d workers", n), 0, first)
		}
	}
	b.rotateTokens(nil)
}

func liveCount(in []providers.Instance) int {
	n := 0
	for _, x := range in {
		if x.State.Live() {
			n++
		}
	}
	return n
}

func slug(group string) string { return strings.ReplaceAll(group, "/", "-") }

// add appends s with a unique stable id built from its action, group and
// target, and returns the id. Empty ids in s.DependsOn are dropped.
func (b *builder) add(s Step, target string) string {
	id := fmt.Sprintf("%s-%s-%s", s.Action, slug(s.Group), target)
	if s.Group == "" {
		id = fmt.Sprintf("%s-%s", s.Action, target)
	}
	if b.ids[id] {
		for i := 2; ; i++ {
			if alt := fmt.Sprintf("%s-%d", id, i); !b.ids[alt] {
				id = alt
				break
			}
		}
	}
	b.ids[id] = true
	s.ID = id
	s.DependsOn = compactDeps(s.DependsOn)
	for _, d := range s.DependsOn {
		b.child[d] = true
	}
	b.steps = append(b.steps, s)
	return id
}

func compactDeps(deps []string) []string {
	out := deps[:0:0]
	for _, d := range deps {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// leaves returns the steps nothing depends on yet, in plan order.
func (b *builder) leaves() []string {
	var out []string
	for _, s := range b.steps {
		if !b.child[s.ID] {
			out = append(out, s.ID)
		}
	}
	return out
}

// liveInstances counts the instances that exist (terminated ones stay
// listed by clouds for a while; a plan's header does not count them).
func liveInstances(insts []providers.Instance) int {
	n := 0
	for _, in := range insts {
		if in.State.Live() {
			n++
		}
	}
	return n
}
