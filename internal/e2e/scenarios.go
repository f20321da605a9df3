package e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/observe"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/schema"
)

// withCounts returns a copy of spec with the manager and general-worker
// counts set.
func withCounts(spec schema.Cluster, managers, workers int) schema.Cluster {
	c := spec
	c.Managers.Count = managers
	c.Workers = map[string]schema.WorkerGroup{}
	for n, g := range spec.Workers {
		c.Workers[n] = g
	}
	g := c.Workers["general"]
	g.Count = workers
	c.Workers["general"] = g
	return c
}

// Bootstrap creates the whole cluster (3 managers, 2 workers) from
// nothing, checks its shape and that a second pass plans nothing.
func Bootstrap(t testing.TB, w *World) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rec := &Recorder{}
	spec := withCounts(w.Spec, 3, 2)
	took := MustConverge(ctx, t, w, spec, rec)
	CheckShape(ctx, t, w, spec)
	assertNoTokenIn(ctx, t, w, rec.Text())
	return took
}

// leaderClient is a Docker client on the current leader.
func leaderClient(ctx context.Context, t testing.TB, w *World) *client.Client {
	t.Helper()
	sw, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	switch ds := sw.(type) {
	case *docker.Swarm:
		return ds.Client()
	}
	t.Fatalf("the leader endpoint is a %T, want a Docker endpoint", sw)
	return nil
}

// importImage puts lab/busybox on every live instance of the cluster.
func importImage(ctx context.Context, t testing.TB, w *World, spec schema.Cluster) {
	t.Helper()
	insts, err := w.Cloud.Instances(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	var live []providers.Instance
	for _, in := range insts {
		if in.State == providers.StateRunning {
			live = append(live, in)
		}
	}
	if err := w.ImportImage(ctx, live...); err != nil {
		t.Fatal(err)
	}
}

// runningTasks maps node id -> number of running tasks of service.
func runningTasks(ctx context.Context, cli *client.Client, service string) (map[string]int, error) {
	tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, tk := range tasks {
		if tk.Status.State == swarm.TaskStateRunning {
			out[tk.NodeID]++
		}
	}
	return out, nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ScaleWorkers grows the workers 2 → 4 and shrinks them to 1 while a
// service of 4 real tasks runs; before any worker's instance is terminated,
// all 4 tasks must be running on other nodes.
func ScaleWorkers(t testing.TB, w *World) (up time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	rec := &Recorder{}
	spec := withCounts(w.Spec, 3, 2)
	MustConverge(ctx, t, w, spec, rec)
	importImage(ctx, t, w, spec)

	cli := leaderClient(ctx, t, w)
	replicas := uint64(4)
	resp, err := cli.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "sleepers"},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
			Image: lab.Image, Command: []string{"sleep", "100000"},
		}},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("failed to create service: %v", err)
	}
	waitTasks := func(what string) map[string]int {
		t.Helper()
		var got map[string]int
		err := lab.Poll(ctx, func() (bool, error) {
			var err error
			got, err = runningTasks(ctx, cli, resp.ID)
			return err == nil && sum(got) == int(replicas), nil
		})
		if err != nil {
			t.Fatalf("%s: tasks running per node %v, want %d in all: %v", what, got, replicas, err)
		}
		return got
	}
	waitTasks("before scaling")

	up = MustConverge(ctx, t, w, withCounts(w.Spec, 3, 4), rec)
	CheckShape(ctx, t, w, withCounts(w.Spec, 3, 4))
	importImage(ctx, t, w, spec)

	// Scale down to 1. Just before each terminate, the victim's node must
	// run none of the service's tasks and all 4 must run elsewhere.
	var mu sync.Mutex
	var violations []string
	terminated := 0
	rec.OnStart = func(s plan.Step) {
		if s.Action != plan.ActionTerminate || s.Group != "workers/general" {
			return
		}
		got, err := runningTasks(ctx, cli, resp.ID)
		mu.Lock()
		defer mu.Unlock()
		terminated++
		if err != nil {
			violations = append(violations, fmt.Sprintf("before %s: %v", s.ID, err))
			return
		}
		if got[s.Node] != 0 || sum(got) != int(replicas) {
			violations = append(violations, fmt.Sprintf("before %s: running tasks per node %v (victim node %s)", s.ID, got, s.Node))
		}
	}
	MustConverge(ctx, t, w, withCounts(w.Spec, 3, 1), rec)
	rec.OnStart = nil
	CheckShape(ctx, t, w, withCounts(w.Spec, 3, 1))
	if terminated != 3 {
		t.Errorf("%d worker terminations seen, want 3", terminated)
	}
	for _, v := range violations {
		t.Errorf("a drained worker's tasks were not running elsewhere: %s", v)
	}
	final := waitTasks("after scaling down")
	if len(final) != 1 {
		t.Errorf("tasks run on %d nodes, want all on the last worker: %v", len(final), final)
	}
	assertNoTokenIn(ctx, t, w, rec.Text())
	return up
}

// quorumWatcher samples the swarm through every manager's endpoint and
// records moments without a reachable leader or below quorum, including
// moments when no manager answers at all (the very case it exists for).
type quorumWatcher struct {
	w       *World
	spec    schema.Cluster
	mu      sync.Mutex
	samples int
	bad     []string
}

func (q *quorumWatcher) sample(ctx context.Context) {
	insts, err := q.w.Cloud.Instances(ctx, q.spec.Name)
	if err != nil {
		return
	}
	// Ask every running manager at once, each with its own deadline (one
	// manager that blocks, e.g. while it is being demoted, must not use up
	// the others' time); any one answer that names a leader with a quorum
	// of reachable managers is a good sample. The deadline outlasts a raft
	// election (the Swarm API waits for the new leader), so only a Swarm
	// that stays without a leader or a quorum makes a bad sample.
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		good    bool
		reasons []string
	)
	for _, in := range insts {
		if in.Group != schema.ManagersGroup || in.State != providers.StateRunning {
			continue
		}
		wg.Add(1)
		go func(in providers.Instance) {
			defer wg.Done()
			reason := q.ask(ctx, in)
			mu.Lock()
			defer mu.Unlock()
			if reason == "" {
				good = true
			} else {
				reasons = append(reasons, reason)
			}
		}(in)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // the watch ended during this sample: no verdict
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.samples++
	if good {
		return
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no running manager")
	}
	sort.Strings(reasons)
	q.bad = append(q.bad, fmt.Sprintf("%s %v", time.Now().Format("15:04:05.000"), reasons))
}

// ask returns "" when the manager in answers with a leader and a quorum of
// reachable managers, else why not.
func (q *quorumWatcher) ask(ctx context.Context, in providers.Instance) string {
	ctx, cancel := context.WithTimeout(ctx, quorumAnswerWithin)
	defer cancel()
	ep, err := q.w.Endpoint(ctx, in)
	if err != nil {
		return fmt.Sprintf("%s: no endpoint (%v)", in.ID, err)
	}
	st, err := ep.Observe(ctx)
	ep.Close()
	if err != nil || !st.Active {
		return fmt.Sprintf("%s: did not answer as an active manager within %s (%v)", in.ID, quorumAnswerWithin, err)
	}
	members, reachable, leader := 0, 0, false
	for _, n := range st.Nodes {
		if n.Role != providers.RoleManager {
			continue
		}
		members++
		if n.Reachability == providers.Reachable {
			reachable++
		}
		leader = leader || n.Leader
	}
	if leader && reachable >= members/2+1 {
		return ""
	}
	return fmt.Sprintf("%s: leader=%v reachable %d of %d", in.ID, leader, reachable, members)
}

// quorumAnswerWithin is how long the watcher waits for one manager's
// answer: longer than a raft election after a leader steps down (1–3 s
// here), far shorter than a Swarm left without quorum.
const quorumAnswerWithin = 8 * time.Second

func (q *quorumWatcher) run(ctx context.Context) {
	tk := time.NewTicker(300 * time.Millisecond)
	defer tk.Stop()
	for {
		q.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// ScaleManagers grows the managers 3 → 5 → 3, then replaces all of them
// after a config change (rolling, update.monitor 1s between batches), while
// a watcher checks that a leader with a quorum of reachable managers exists
// throughout. It returns the mean time per replaced manager (including the
// 1s monitor).
func ScaleManagers(t testing.TB, w *World) (perReplacement time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rec := &Recorder{}
	spec := withCounts(w.Spec, 3, 0)
	MustConverge(ctx, t, w, spec, rec)

	q := &quorumWatcher{w: w, spec: spec}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { q.run(wctx) })

	MustConverge(ctx, t, w, withCounts(w.Spec, 5, 0), rec)
	CheckShape(ctx, t, w, withCounts(w.Spec, 5, 0))
	MustConverge(ctx, t, w, spec, rec)
	CheckShape(ctx, t, w, spec)

	before, err := w.Cloud.Instances(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	changed := spec
	changed.Managers.Instance.Type = "bigger"
	// Between batches apply watches the new managers for update.monitor.
	changed.Update.Monitor = schema.Duration{Duration: time.Second}
	took := MustConverge(ctx, t, w, changed, rec)
	CheckShape(ctx, t, w, changed)
	stop()
	wg.Wait()

	after, err := w.Cloud.Instances(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	var oldLive []string
	for _, b := range before {
		if !b.State.Live() {
			continue
		}
		for _, a := range after {
			if a.ID == b.ID && a.State.Live() {
				oldLive = append(oldLive, a.ID)
			}
		}
	}
	if len(oldLive) != 0 {
		t.Errorf("managers with the old config still live after the rolling replacement: %v", oldLive)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	t.Logf("quorum watcher: %d samples, %d without a leader and quorum", q.samples, len(q.bad))
	if q.samples < 10 {
		t.Errorf("the watcher took only %d samples", q.samples)
	}
	for _, b := range q.bad {
		t.Errorf("no leader with quorum at %s", b)
	}
	assertNoTokenIn(ctx, t, w, rec.Text())
	return took / 3
}

// CrashSafety interrupts a scale-up (1 → 3 workers) and a scale-down
// (3 → 1) at every step index in turn: for index i it cancels the
// scale-up's apply as its i-th step starts, converges, checks the exact
// shape, then does the same to the scale-down. No duplicate instance (every
// instance ever launched is counted, terminated ones included), no orphaned
// instance or node, the worker join token the new workers joined with
// rotated (joinTokens.rotateAfterJoin), no join token in the output. It
// returns the number of steps of the two plans.
func CrashSafety(t testing.TB, w *World) (upSteps, downSteps int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rec := &Recorder{}
	MustConverge(ctx, t, w, withCounts(w.Spec, 3, 1), rec)
	launched := 4
	// Notes of the converged world (e.g. groups whose security groups are
	// not checked) stay on every plan; only the others tell of pending work.
	steady := map[string]bool{}
	for _, n := range planOnly(ctx, t, w, withCounts(w.Spec, 3, 1)).Notes {
		steady[n] = true
	}

	// interrupt cancels the apply towards spec as its at-th step starts
	// (in start order) and returns the plan's actions.
	interrupt := func(spec schema.Cluster, at int) []string {
		t.Helper()
		actx, acancel := context.WithCancel(ctx)
		defer acancel()
		n := 0
		var stoppedAt string
		rec.OnStart = func(s plan.Step) {
			if n == at {
				stoppedAt = s.ID
				acancel()
			}
			n++
		}
		p, res, err := Converge(actx, t, w, spec, rec)
		rec.OnStart = nil
		if p == nil {
			t.Fatalf("interrupt at step %d: no plan: %v", at, err)
		}
		if stoppedAt == "" {
			t.Fatalf("the apply ended before its step %d started (plan %v)", at, stepIDs(p))
		}
		if err == nil {
			t.Fatalf("the interrupted apply succeeded (interrupted at step %d, %s)", at, stoppedAt)
		}
		t.Logf("interrupted at step %d, %s: done %v, failed %v", at, stoppedAt, res.IDs("done"), res.IDs("failed"))
		var actions []string
		for _, s := range p.Steps {
			actions = append(actions, string(s.Action))
		}
		return actions
	}
	checkLaunched := func(what string) {
		t.Helper()
		insts, err := w.Cloud.Instances(ctx, w.Spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(insts) != launched {
			t.Errorf("%s: %d instances were ever launched, want %d (a duplicate launch?)", what, len(insts), launched)
		}
	}

	// The plans' lengths are learnt from the first interrupted runs; every
	// later run must show a plan of the same actions.
	var upPlan, downPlan []string
	for i := 0; i == 0 || i < max(len(upPlan), len(downPlan)); i++ {
		for _, ph := range []struct {
			name    string
			workers int
			plan    *[]string
		}{
			{"scale-up", 3, &upPlan},
			{"scale-down", 1, &downPlan},
		} {
			spec := withCounts(w.Spec, 3, ph.workers)
			before := workerToken(ctx, t, w)
			if ph.workers == 3 {
				launched += 2
			}
			if i == 0 || i < len(*ph.plan) {
				actions := interrupt(spec, i)
				if *ph.plan != nil && fmt.Sprint(actions) != fmt.Sprint(*ph.plan) {
					t.Fatalf("%s, step %d: the plan changed between runs: %v, before %v", ph.name, i, actions, *ph.plan)
				}
				*ph.plan = actions
			}
			what := fmt.Sprintf("%s, step %d", ph.name, i)
			if i >= len(*ph.plan) {
				what = ph.name + " (not interrupted)"
			}
			convergeAfterCrash(ctx, t, w, spec, rec, what, steady)
			CheckShape(ctx, t, w, spec)
			checkLaunched(what)
			// joinTokens.rotateAfterJoin: the token the new workers joined
			// with no longer works.
			if ph.workers == 3 && workerToken(ctx, t, w) == before {
				t.Errorf("%s: the worker join token used by the new workers was not rotated", what)
			}
		}
	}
	t.Logf("interrupted at each of the %d steps of the scale-up %v and the %d of the scale-down %v",
		len(upPlan), upPlan, len(downPlan), downPlan)
	assertNoTokenIn(ctx, t, w, rec.Text())
	return len(upPlan), len(downPlan)
}

// convergeAfterCrash runs passes until the plan is empty and notes
// nothing beyond the steady notes of the converged world (at most 3 passes). A pass's plan may carry notes: a node whose
// instance an interrupted apply terminated stays Ready until its heartbeat
// lapses, and the planner removes it on a later pass. After a pass with
// notes, it polls the plan (at most 20s) until the notes give way to steps
// or to nothing. Steps planned after a pass whose plan had no notes fail:
// apply left its work undone.
func convergeAfterCrash(ctx context.Context, t testing.TB, w *World, spec schema.Cluster, rec *Recorder, what string, steady map[string]bool) {
	t.Helper()
	pending := func(notes []string) []string {
		var out []string
		for _, n := range notes {
			if !steady[n] {
				out = append(out, n)
			}
		}
		return out
	}
	for pass := 1; ; pass++ {
		done, _, err := Converge(ctx, t, w, spec, rec)
		if err != nil {
			t.Fatalf("%s: pass %d: %v\nprogress:\n%s", what, pass, err, tail(rec.Text(), 40))
		}
		p := planOnly(ctx, t, w, spec)
		switch {
		case len(p.Steps) == 0 && len(pending(p.Notes)) == 0:
			t.Logf("%s: converged in %d pass(es)", what, pass)
			return
		case len(pending(done.Notes)) == 0:
			t.Fatalf("%s: after pass %d (a plan without notes), the plan has steps %v, notes %v", what, pass, stepIDs(p), p.Notes)
		case pass == 3:
			t.Fatalf("%s: not converged after %d passes: steps %v, notes %v", what, pass, stepIDs(p), p.Notes)
		}
		t.Logf("%s: pass %d planned notes: %v", what, pass, done.Notes)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = lab.Poll(wctx, func() (bool, error) {
			p = planOnly(ctx, t, w, spec)
			return len(pending(p.Notes)) == 0, nil
		})
		cancel()
		if err != nil {
			t.Fatalf("%s: the notes did not clear: %v: %v", what, p.Notes, err)
		}
	}
}

// planOnly observes and plans without applying.
func planOnly(ctx context.Context, t testing.TB, w *World, spec schema.Cluster) *plan.Plan {
	t.Helper()
	sw, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := observe.TakeFor(ctx, w.Cloud, sw, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Compute(spec, obs, plan.Source{Repo: "e2e", Commit: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// workerToken is the swarm's current worker join token.
func workerToken(ctx context.Context, t testing.TB, w *World) string {
	t.Helper()
	sw, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := sw.JoinTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Worker
}

// assertNoTokenIn fails when a join token (current, or shaped like one)
// appears in text.
func assertNoTokenIn(ctx context.Context, t testing.TB, w *World, text string) {
	t.Helper()
	sw, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if text == "" {
		t.Error("nothing was recorded to scan")
	}
	assertNoToken(t, sw, text)
}
