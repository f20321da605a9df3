package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/observe"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// Recorder collects every progress event and error text of a scenario, so
// the scenario can check that no join token ever appeared in them. It can
// also run a function when a step starts (to interrupt an apply, or to
// check the world just before a step acts).
type Recorder struct {
	mu      sync.Mutex
	lines   []string
	OnStart func(s plan.Step)
}

var _ apply.Hook = (*Recorder)(nil)

// StepStarted records the start of a step and calls OnStart.
func (r *Recorder) StepStarted(s plan.Step, at time.Time) {
	r.Add(fmt.Sprintf("start %s %s %s %s %s", s.ID, s.Action, s.Group, s.Instance, s.Reason))
	if r.OnStart != nil {
		r.OnStart(s)
	}
}

// StepFinished records how a step ended.
func (r *Recorder) StepFinished(s plan.Step, res apply.StepResult) {
	r.Add(fmt.Sprintf("%s %s after %s %v %s", res.Status, s.ID, res.Elapsed, res.Instances, res.Error))
}

// Add records a line of output.
func (r *Recorder) Add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
}

// Text is everything recorded.
func (r *Recorder) Text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// ConvergePoll is the PollInterval of the applies Converge runs.
const ConvergePoll = 250 * time.Millisecond

// Converge runs one pass: observe, plan, apply through the current leader.
// The plan, its JSON and the outcome are recorded in rec.
func Converge(ctx context.Context, t testing.TB, w *World, spec schema.Cluster, rec *Recorder) (*plan.Plan, *apply.Result, error) {
	t.Helper()
	phase := func(string) {}
	var hook apply.Hook = rec
	if w.Calls != nil {
		phase = w.Calls.SetPhase
		hook = phaseHook{rec: rec, calls: w.Calls}
		defer phase("idle")
	}
	phase("find-leader")
	sw, err := w.Leader(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to reach the swarm: %w", err)
	}
	phase("observe")
	obs, err := observe.TakeFor(ctx, w.Cloud, sw, spec, time.Now())
	if err != nil {
		return nil, nil, err
	}
	phase("plan")
	p, err := plan.Compute(spec, obs, plan.Source{Repo: "e2e", Commit: "test"})
	if err != nil {
		return nil, nil, err
	}
	if b, err := plan.MarshalPlan(p); err == nil {
		rec.Add(string(b))
	}
	phase("apply")
	res, err := apply.Run(ctx, p, apply.Deps{
		Cloud: w.Cloud, Swarm: sw, Dialer: w.Dialer, Clock: apply.SystemClock{},
		Hook: hook, PollInterval: ConvergePoll, FindLeader: w.Leader,
	})
	if res != nil {
		rec.Add(fmt.Sprintf("%+v", *res))
	}
	if err != nil {
		rec.Add(err.Error())
	}
	return p, res, err
}

// MustConverge converges and then checks that a second pass plans nothing.
func MustConverge(ctx context.Context, t testing.TB, w *World, spec schema.Cluster, rec *Recorder) time.Duration {
	t.Helper()
	start := time.Now()
	p, _, err := Converge(ctx, t, w, spec, rec)
	if err != nil {
		t.Fatalf("converge to %s: %v\nprogress:\n%s", counts(spec), err, tail(rec.Text(), 40))
	}
	took := time.Since(start)
	batches := 0
	for _, s := range p.Steps {
		batches = max(batches, s.Batch)
	}
	t.Logf("converged to %s in %s (%d steps, %d rollout batches)", counts(spec), took.Round(10*time.Millisecond), len(p.Steps), batches)
	p2, _, err := Converge(ctx, t, w, spec, rec)
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if len(p2.Steps) != 0 {
		t.Fatalf("second pass planned %d steps, want none: %v", len(p2.Steps), stepIDs(p2))
	}
	return took
}

func counts(c schema.Cluster) string {
	s := fmt.Sprintf("%d managers", c.Managers.Count)
	for n, g := range c.Workers {
		s += fmt.Sprintf(", %d %s", g.Count, n)
	}
	return s
}

func stepIDs(p *plan.Plan) []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = s.ID
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CheckShape asserts that the cloud and the swarm match spec exactly: one
// live instance per wanted node, each with a Ready node of the right role,
// labels and availability; no node without a live instance; no duplicate.
func CheckShape(ctx context.Context, t testing.TB, w *World, spec schema.Cluster) {
	t.Helper()
	insts, err := w.Cloud.Instances(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := observeSettled(ctx, sw)
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]providers.Instance{}
	perGroup := map[string]int{}
	for _, in := range insts {
		if in.State.Live() {
			live[in.ID] = in
			perGroup[in.Group]++
		}
	}
	want := map[string]int{schema.ManagersGroup: spec.Managers.Count}
	for n, g := range spec.Workers {
		want[schema.WorkerGroupName(n)] = g.Count
	}
	for g, n := range want {
		if perGroup[g] != n {
			t.Errorf("group %s has %d live instances, want %d", g, perGroup[g], n)
		}
	}
	seen := map[string]bool{}
	for _, n := range st.Nodes {
		id := n.InstanceID()
		in, ok := live[id]
		if !ok {
			t.Errorf("node %s (%s, %s) has no live instance (label %q)", n.ID, n.Role, n.State, id)
			continue
		}
		if seen[id] {
			t.Errorf("instance %s has two nodes", id)
		}
		seen[id] = true
		if n.State != providers.NodeReady {
			t.Errorf("node %s of %s is %s", n.ID, id, n.State)
		}
		wantRole := providers.RoleWorker
		if in.Group == schema.ManagersGroup {
			wantRole = providers.RoleManager
		}
		if n.Role != wantRole {
			t.Errorf("node %s of %s is a %s, want %s", n.ID, id, n.Role, wantRole)
		}
		if n.Labels[providers.NodeLabelGroup] != in.Group {
			t.Errorf("node %s has group label %q, want %q", n.ID, n.Labels[providers.NodeLabelGroup], in.Group)
		}
	}
	for id := range live {
		if !seen[id] {
			t.Errorf("live instance %s has no node", id)
		}
	}
}

// observeSettled observes through sw, waiting (at most 20s) while a node
// is not Ready: right after a leadership change the new leader reports
// nodes unknown, and then down, until they register with it again.
func observeSettled(ctx context.Context, sw providers.Swarm) (providers.SwarmState, error) {
	var st providers.SwarmState
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := lab.Poll(wctx, func() (bool, error) {
		var err error
		if st, err = sw.Observe(ctx); err != nil {
			return false, err
		}
		for _, n := range st.Nodes {
			if n.State != providers.NodeReady {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		return st, nil // still not Ready: the caller's checks report it
	}
	return st, err
}
