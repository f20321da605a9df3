package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

func testCluster() schema.Cluster {
	return schema.Cluster{
		Name:     "c1",
		Provider: schema.Provider{Local: &schema.LocalProvider{Subnet: "10.9.0.0/24"}},
		Managers: schema.Managers{Count: 3, Availability: "drain", Labels: map[string]string{"role": "control"}},
		Workers:  map[string]schema.WorkerGroup{"general": {Count: 2, Labels: map[string]string{"tier": "web"}}},
		Update: schema.Update{
			Parallelism: 1, FailureAction: "pause",
			JoinTimeout:  schema.Duration{Duration: 10 * time.Minute},
			DrainTimeout: schema.Duration{Duration: 5 * time.Minute},
		},
		JoinTokens: schema.JoinTokens{RotateAfterJoin: true},
	}
}

func bootstrapPlan() *plan.Plan {
	const w = "workers/general"
	return &plan.Plan{
		FormatVersion: plan.FormatVersion,
		Cluster:       "c1",
		Desired:       testCluster(),
		Observation:   plan.ObservationSummary{Fingerprint: "fp-empty"},
		Steps: []plan.Step{
			{ID: "launch-managers-1", Action: plan.ActionLaunch, Group: "managers", Count: 1, Role: providers.RoleManager, Config: "cfg-m", Init: true},
			{ID: "await-join-managers-1", Action: plan.ActionAwaitJoin, Group: "managers", LaunchStep: "launch-managers-1", DependsOn: []string{"launch-managers-1"}},
			{ID: "label-managers-1", Action: plan.ActionLabel, Group: "managers", LaunchStep: "launch-managers-1", Labels: map[string]string{"role": "control"}, Availability: providers.AvailabilityDrain, DependsOn: []string{"await-join-managers-1"}},
			{ID: "launch-managers-2", Action: plan.ActionLaunch, Group: "managers", Count: 2, Role: providers.RoleManager, Config: "cfg-m", DependsOn: []string{"label-managers-1"}},
			{ID: "await-join-managers-2", Action: plan.ActionAwaitJoin, Group: "managers", LaunchStep: "launch-managers-2", DependsOn: []string{"launch-managers-2"}},
			{ID: "launch-workers-general-1", Action: plan.ActionLaunch, Group: w, Count: 2, Role: providers.RoleWorker, Config: "cfg-w", DependsOn: []string{"await-join-managers-2"}},
			{ID: "await-join-workers-general-1", Action: plan.ActionAwaitJoin, Group: w, LaunchStep: "launch-workers-general-1", DependsOn: []string{"launch-workers-general-1"}},
			{ID: "label-workers-general-1", Action: plan.ActionLabel, Group: w, LaunchStep: "launch-workers-general-1", Labels: map[string]string{"tier": "web"}, DependsOn: []string{"await-join-workers-general-1"}},
			{ID: "rotate-join-token", Action: plan.ActionRotateJoinToken, RotateWorker: true, RotateManager: true, DependsOn: []string{"await-join-workers-general-1", "await-join-managers-2"}},
		},
	}
}

// recHook records progress events as text.
type recHook struct {
	mu     sync.Mutex
	events []string
}

func (h *recHook) StepStarted(s plan.Step, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, "start "+s.ID)
}

func (h *recHook) StepFinished(s plan.Step, r StepResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, fmt.Sprintf("%s %s %s", r.Status, s.ID, r.Error))
}

type world struct {
	swarm *fakeSwarm
	cloud *fakeCloud
	clock *fakeClock
	hook  *recHook
}

func newWorld() *world {
	sw := newFakeSwarm()
	return &world{swarm: sw, cloud: newFakeCloud(sw), clock: newFakeClock(), hook: &recHook{}}
}

func (w *world) deps() Deps {
	return Deps{Cloud: w.cloud, Swarm: w.swarm, Dialer: w.swarm, Clock: w.clock, Hook: w.hook}
}

// assertNoSecrets fails if any join token ever issued appears in text.
func assertNoSecrets(t *testing.T, w *world, texts ...string) {
	t.Helper()
	secrets := []string{"workersecret", "managersecret"}
	for _, txt := range texts {
		for _, s := range secrets {
			if strings.Contains(txt, s) {
				t.Errorf("a join token leaked into output: %q", txt)
			}
		}
	}
}

func TestRunBootstrap(t *testing.T) {
	w := newWorld()
	res, err := Run(context.Background(), bootstrapPlan(), w.deps())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := res.IDs(StatusDone); len(got) != 9 {
		t.Fatalf("done steps = %v, want all 9", got)
	}
	if w.cloud.live() != 5 {
		t.Errorf("live instances = %d, want 5", w.cloud.live())
	}
	if w.swarm.dialed != 1 {
		t.Errorf("dialer used %d times, want 1 (after the init launch)", w.swarm.dialed)
	}
	st, _ := w.swarm.Observe(context.Background())
	var managers, workers int
	for _, n := range st.Nodes {
		switch n.Role {
		case providers.RoleManager:
			managers++
		case providers.RoleWorker:
			workers++
			if diff := cmp.Diff(map[string]string{"tier": "web", providers.NodeLabelGroup: "workers/general"}, n.Labels); diff != "" {
				t.Errorf("worker %s labels (-want +got):\n%s", n.ID, diff)
			}
		}
	}
	if managers != 3 || workers != 2 {
		t.Errorf("swarm has %d managers, %d workers; want 3, 2", managers, workers)
	}
	// Launch requests: tags, token and user data.
	for _, req := range w.cloud.launches {
		for _, k := range []string{providers.TagCluster, providers.TagGroup, providers.TagConfig, providers.TagName} {
			if req.Tags[k] == "" {
				t.Errorf("launch of %s lacks tag %s", req.Group, k)
			}
		}
		if len(req.IdempotencyToken) == 0 || len(req.IdempotencyToken) > 64 {
			t.Errorf("bad idempotency token %q", req.IdempotencyToken)
		}
	}
	if !strings.Contains(string(w.cloud.launches[0].UserData), "docker swarm init") {
		t.Errorf("first launch does not initialise the swarm:\n%s", w.cloud.launches[0].UserData)
	}
	if !strings.Contains(string(w.cloud.launches[1].UserData), "SWMTKN-1-managersecret0001") {
		t.Errorf("manager launch does not carry the manager join token")
	}
	if w.swarm.rotations != 1 {
		t.Errorf("rotations = %d, want 1", w.swarm.rotations)
	}
	assertNoSecrets(t, w, strings.Join(w.hook.events, "\n"), fmt.Sprint(res))
}

func TestRunIdempotentRelaunch(t *testing.T) {
	w := newWorld()
	p := bootstrapPlan()
	if _, err := Run(context.Background(), p, w.deps()); err != nil {
		t.Fatal(err)
	}
	// The same plan again (a re-run after a crash that lost the result):
	// the tokens are the same, so nothing is launched twice. The join steps
	// then fail on rotated tokens is not relevant: the cloud dedups first.
	w.swarm.mu.Lock()
	w.swarm.rotations = 0
	w.swarm.mu.Unlock()
	if _, err := Run(context.Background(), p, w.deps()); err != nil {
		t.Fatal(err)
	}
	if w.cloud.live() != 5 {
		t.Errorf("live instances after re-run = %d, want 5", w.cloud.live())
	}
	if IdempotencyToken("fp", "a") == IdempotencyToken("fp", "b") || IdempotencyToken("fp1", "a") == IdempotencyToken("fp2", "a") {
		t.Error("tokens must differ per step and per observation")
	}
}

func TestRunNotLeader(t *testing.T) {
	tests := []struct {
		name       string
		loseAfter  int
		wantDone   []string
		wantFailed []string
		wantNotRun int
	}{
		{name: "never leader", loseAfter: -1, wantFailed: []string{"launch-workers-x-1"}, wantNotRun: 2},
		{
			name: "loses leadership after first step", loseAfter: 1,
			wantDone:   []string{"launch-workers-x-1", "await-join-workers-x-1"},
			wantFailed: []string{"label-workers-x-1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			bootstrapSwarm(t, w)
			w.swarm.mu.Lock()
			w.swarm.leaderAddr = "10.9.0.2:2377"
			if tc.loseAfter < 0 {
				w.swarm.leader = false
			} else {
				w.swarm.loseLeadershipAfter = tc.loseAfter + w.swarm.leaderChecks
			}
			w.swarm.mu.Unlock()
			launchesBefore := len(w.cloud.launches)
			p := workerPlan("x")
			res, err := Run(context.Background(), p, w.deps())
			var nl *NotLeaderError
			if !errors.As(err, &nl) {
				t.Fatalf("err = %v, want NotLeaderError", err)
			}
			if !strings.Contains(err.Error(), "10.9.0.2:2377") {
				t.Errorf("error does not name the leader: %v", err)
			}
			if diff := cmp.Diff(tc.wantDone, res.IDs(StatusDone)); diff != "" {
				t.Errorf("done (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFailed, res.IDs(StatusFailed)); diff != "" {
				t.Errorf("failed (-want +got):\n%s", diff)
			}
			if got := len(res.IDs(StatusNotRun)); got != tc.wantNotRun {
				t.Errorf("not-run = %d, want %d", got, tc.wantNotRun)
			}
			if tc.loseAfter < 0 && len(w.cloud.launches) != launchesBefore {
				t.Errorf("a non-leader launched instances")
			}
		})
	}
}

// bootstrapSwarm brings up one manager in the fake world.
func bootstrapSwarm(t *testing.T, w *world) {
	t.Helper()
	p := bootstrapPlan()
	p.Steps = p.Steps[:3]
	if _, err := Run(context.Background(), p, w.deps()); err != nil {
		t.Fatal(err)
	}
}

// workerPlan adds one worker to group g (which must be in the spec).
func workerPlan(g string) *plan.Plan {
	c := testCluster()
	c.Workers[g] = schema.WorkerGroup{Count: 1}
	grp := "workers/" + g
	l := "launch-workers-" + g + "-1"
	return &plan.Plan{
		Cluster: "c1", Desired: c, Observation: plan.ObservationSummary{Fingerprint: "fp-" + g},
		Steps: []plan.Step{
			{ID: l, Action: plan.ActionLaunch, Group: grp, Count: 1, Config: "cfg"},
			{ID: "await-join-workers-" + g + "-1", Action: plan.ActionAwaitJoin, Group: grp, LaunchStep: l, DependsOn: []string{l}},
			{ID: "label-workers-" + g + "-1", Action: plan.ActionLabel, Group: grp, LaunchStep: l, DependsOn: []string{"await-join-workers-" + g + "-1"}},
		},
	}
}

func TestRunFailureAction(t *testing.T) {
	tests := []struct {
		name        string
		action      string
		wantDone    []string
		wantFailed  []string
		wantSkipped []string
		wantNotRun  []string
	}{
		{
			name: "pause stops", action: "pause",
			wantFailed: []string{"launch-workers-bad-1"},
			wantNotRun: []string{"await-join-workers-bad-1", "label-workers-bad-1", "launch-workers-good-1", "await-join-workers-good-1", "label-workers-good-1"},
		},
		{
			name: "continue skips dependents", action: "continue",
			wantDone:    []string{"launch-workers-good-1", "await-join-workers-good-1", "label-workers-good-1"},
			wantFailed:  []string{"launch-workers-bad-1"},
			wantSkipped: []string{"await-join-workers-bad-1", "label-workers-bad-1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			bootstrapSwarm(t, w)
			w.cloud.failLaunch = "workers/bad"
			p := workerPlan("bad")
			good := workerPlan("good")
			p.Desired.Workers["good"] = good.Desired.Workers["good"]
			p.Steps = append(p.Steps, good.Steps...)
			p.Desired.Update.FailureAction = tc.action
			res, err := Run(context.Background(), p, w.deps())
			if err == nil {
				t.Fatal("Run succeeded, want an error")
			}
			var se *StepError
			if !errors.As(err, &se) || se.Step != "launch-workers-bad-1" {
				t.Errorf("err = %v, want a StepError for launch-workers-bad-1", err)
			}
			for _, c := range []struct {
				st   Status
				want []string
			}{{StatusDone, tc.wantDone}, {StatusFailed, tc.wantFailed}, {StatusSkipped, tc.wantSkipped}, {StatusNotRun, tc.wantNotRun}} {
				if diff := cmp.Diff(c.want, res.IDs(c.st)); diff != "" {
					t.Errorf("%s steps (-want +got):\n%s", c.st, diff)
				}
			}
			// The provider echoed the user data into its error; apply must
			// not pass the token on.
			assertNoSecrets(t, w, err.Error(), fmt.Sprint(res), strings.Join(w.hook.events, "\n"))
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("expected the echoed token to be redacted: %v", err)
			}
		})
	}
}

func TestRunJoinTimeout(t *testing.T) {
	w := newWorld()
	bootstrapSwarm(t, w)
	w.swarm.noJoin = true
	start := w.clock.Now()
	res, err := Run(context.Background(), workerPlan("x"), w.deps())
	if err == nil || !strings.Contains(err.Error(), "did not become Ready nodes in the swarm within joinTimeout 10m0s") {
		t.Fatalf("err = %v, want a join timeout", err)
	}
	if el := w.clock.Now().Sub(start); el < 10*time.Minute || el > 11*time.Minute {
		t.Errorf("waited %s of virtual time, want about joinTimeout", el)
	}
	if diff := cmp.Diff([]string{"await-join-workers-x-1"}, res.IDs(StatusFailed)); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
}

func TestRunParallelism(t *testing.T) {
	w := newWorld()
	bootstrapSwarm(t, w)
	p := workerPlan("a")
	b := workerPlan("b")
	p.Desired.Workers["b"] = b.Desired.Workers["b"]
	p.Steps = append(p.Steps, b.Steps...)
	p.Desired.Update.Parallelism = 2
	w.cloud.barrier, w.cloud.release = 2, make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Run(ctx, p, w.deps()); err != nil {
		t.Fatalf("two independent launches did not run in parallel: %v", err)
	}
}

func TestRunScaleDown(t *testing.T) {
	w := newWorld()
	if _, err := Run(context.Background(), bootstrapPlan(), w.deps()); err != nil {
		t.Fatal(err)
	}
	insts, _ := w.cloud.Instances(context.Background(), "c1")
	var victim providers.Instance
	for _, in := range insts {
		if in.Group == "workers/general" {
			victim = in
			break
		}
	}
	node := "node-" + victim.ID
	w.swarm.calls = nil
	p := &plan.Plan{
		Cluster: "c1", Desired: testCluster(), Observation: plan.ObservationSummary{Fingerprint: "fp-2"},
		Steps: []plan.Step{
			{ID: "drain-1", Action: plan.ActionDrain, Group: "workers/general", Instance: victim.ID, Node: node},
			{ID: "await-drained-1", Action: plan.ActionAwaitDrained, Group: "workers/general", Node: node, DependsOn: []string{"drain-1"}},
			{ID: "terminate-1", Action: plan.ActionTerminate, Group: "workers/general", Instance: victim.ID, DependsOn: []string{"await-drained-1"}},
			{ID: "remove-node-1", Action: plan.ActionRemoveNode, Group: "workers/general", Instance: victim.ID, Node: node, DependsOn: []string{"terminate-1"}},
		},
	}
	if _, err := Run(context.Background(), p, w.deps()); err != nil {
		t.Fatal(err)
	}
	want := []string{"update " + node, "remove " + node + " force=false"}
	var got []string
	for _, c := range w.swarm.calls {
		if strings.Contains(c, node) {
			got = append(got, c)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("swarm calls on the victim (-want +got):\n%s", diff)
	}
	if w.cloud.live() != 4 {
		t.Errorf("live = %d, want 4", w.cloud.live())
	}
}

func TestRunAwaitDrained(t *testing.T) {
	tests := []struct {
		name       string
		neverDrain bool
		unmoved    int
		wantErr    string
		wantWait   time.Duration // virtual time, at least
	}{
		{name: "drained and moved at once"},
		{name: "tasks move after a while", unmoved: 3, wantWait: 3 * time.Second},
		{name: "node never drains", neverDrain: true, wantErr: "still runs tasks after drainTimeout 5m0s", wantWait: 5 * time.Minute},
		{name: "tasks never run elsewhere", unmoved: -1, wantErr: "are not running elsewhere after drainTimeout 5m0s", wantWait: 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			if _, err := Run(context.Background(), bootstrapPlan(), w.deps()); err != nil {
				t.Fatal(err)
			}
			w.swarm.neverDrain, w.swarm.unmovedChecks = tc.neverDrain, tc.unmoved
			p := &plan.Plan{
				Cluster: "c1", Desired: testCluster(), Observation: plan.ObservationSummary{Fingerprint: "fp-3"},
				Steps: []plan.Step{{ID: "await-drained-1", Action: plan.ActionAwaitDrained, Node: "node-i-0004"}},
			}
			start := w.clock.Now()
			_, err := Run(context.Background(), p, w.deps())
			if waited := w.clock.Now().Sub(start); waited < tc.wantWait {
				t.Errorf("waited %s of virtual time, want at least %s", waited, tc.wantWait)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheckGraph(t *testing.T) {
	tests := []struct {
		name  string
		steps []plan.Step
		want  string
	}{
		{"duplicate", []plan.Step{{ID: "a"}, {ID: "a"}}, `step id "a" appears twice`},
		{"unknown dep", []plan.Step{{ID: "a", DependsOn: []string{"b"}}}, `depends on unknown step "b"`},
		{"cycle", []plan.Step{{ID: "a", DependsOn: []string{"b"}}, {ID: "b", DependsOn: []string{"a"}}}, "cycle"},
		{"no id", []plan.Step{{}}, "has no id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkGraph(tc.steps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRunHandover(t *testing.T) {
	tests := []struct {
		name       string
		findLeader bool
		wantDone   []string
		wantFailed []string
	}{
		{
			name:       "without a finder the apply stops after demoting itself",
			wantDone:   []string{"demote-self"},
			wantFailed: []string{"remove-node-self"},
		},
		{
			name: "with a finder it goes on through the new leader", findLeader: true,
			wantDone: []string{"demote-self", "remove-node-self"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			if _, err := Run(context.Background(), bootstrapPlan(), w.deps()); err != nil {
				t.Fatal(err)
			}
			w.swarm.selfID = "node-i-0001"
			w.swarm.leaderAddr = "10.9.0.2:2377"
			p := &plan.Plan{
				Cluster: "c1", Desired: testCluster(), Observation: plan.ObservationSummary{Fingerprint: "fp-4"},
				Steps: []plan.Step{
					{ID: "demote-self", Action: plan.ActionDemote, Group: "managers", Node: "node-i-0001"},
					{ID: "remove-node-self", Action: plan.ActionRemoveNode, Group: "managers", Node: "node-i-0001", DependsOn: []string{"demote-self"}},
				},
			}
			d := w.deps()
			if tc.findLeader {
				d.FindLeader = func(context.Context) (providers.Swarm, error) { return otherLeader{w.swarm}, nil }
			}
			res, err := Run(context.Background(), p, d)
			if diff := cmp.Diff(tc.wantDone, res.IDs(StatusDone)); diff != "" {
				t.Errorf("done (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFailed, res.IDs(StatusFailed)); diff != "" {
				t.Errorf("failed (-want +got):\n%s", diff)
			}
			if tc.findLeader {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var nl *NotLeaderError
			if !errors.As(err, &nl) || !nl.HandedOver || !strings.Contains(err.Error(), "leadership moved to 10.9.0.2:2377") {
				t.Fatalf("err = %v, want a hand-over NotLeaderError naming the new leader", err)
			}
		})
	}
}
