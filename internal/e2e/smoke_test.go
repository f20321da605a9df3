package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// TestRunHandPlanOnLocalMachines runs a hand-written bootstrap plan (one
// manager that initialises the swarm, one worker, labels, token rotation)
// through apply.Run on real local machines: it proves the default user data,
// the dialer hand-over after init, the leadership fence and the
// idempotency token on the real providers, independently of the planner.
func TestRunHandPlanOnLocalMachines(t *testing.T) {
	w := NewLocalWorld(t, "smoke", 11)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	spec := w.Spec
	spec.Managers.Count = 1
	const wg = "workers/general"
	p := &plan.Plan{
		FormatVersion: plan.FormatVersion, Cluster: spec.Name, Desired: spec,
		Observation: plan.ObservationSummary{Fingerprint: "smoke-empty"},
		Steps: []plan.Step{
			{ID: "launch-m", Action: plan.ActionLaunch, Group: "managers", Count: 1, Role: providers.RoleManager, Config: "m1", Init: true},
			{ID: "join-m", Action: plan.ActionAwaitJoin, Group: "managers", LaunchStep: "launch-m", DependsOn: []string{"launch-m"}},
			{ID: "label-m", Action: plan.ActionLabel, Group: "managers", LaunchStep: "launch-m", Availability: providers.AvailabilityDrain, DependsOn: []string{"join-m"}},
			{ID: "launch-w", Action: plan.ActionLaunch, Group: wg, Count: 1, Role: providers.RoleWorker, Config: "w1", DependsOn: []string{"join-m"}},
			{ID: "join-w", Action: plan.ActionAwaitJoin, Group: wg, LaunchStep: "launch-w", DependsOn: []string{"launch-w"}},
			{ID: "label-w", Action: plan.ActionLabel, Group: wg, LaunchStep: "launch-w", Labels: map[string]string{"tier": "demo"}, DependsOn: []string{"join-w"}},
			{ID: "rotate", Action: plan.ActionRotateJoinToken, RotateWorker: true, DependsOn: []string{"join-w"}},
		},
	}
	sw, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	hook := hookFunc(func(s string) { events = append(events, s) })
	start := time.Now()
	res, err := apply.Run(ctx, p, apply.Deps{Cloud: w.Cloud, Swarm: sw, Dialer: w.Dialer, Clock: apply.SystemClock{}, Hook: hook, PollInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("apply: %v\nevents:\n%s", err, strings.Join(events, "\n"))
	}
	t.Logf("bootstrap 1+1 took %s", time.Since(start).Round(time.Millisecond))

	leader, err := w.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := leader.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 {
		t.Fatalf("swarm has %d nodes, want 2", len(st.Nodes))
	}
	for _, n := range st.Nodes {
		if n.State != providers.NodeReady || n.InstanceID() == "" || n.Labels[providers.NodeLabelGroup] == "" {
			t.Errorf("node %+v: want Ready, engine label and group label", n)
		}
		if n.Role == providers.RoleManager && n.Availability != providers.AvailabilityDrain {
			t.Errorf("manager availability %s, want drain", n.Availability)
		}
		if n.Role == providers.RoleWorker && n.Labels["tier"] != "demo" {
			t.Errorf("worker labels %v", n.Labels)
		}
	}
	// Re-running the init launch of the same plan (same idempotency token,
	// same request) launches nothing new.
	before, _ := w.Cloud.Instances(ctx, spec.Name)
	_, err = apply.Run(ctx, &plan.Plan{Cluster: spec.Name, Desired: spec, Observation: p.Observation, Steps: p.Steps[:1]},
		apply.Deps{Cloud: w.Cloud, Swarm: leader, Dialer: w.Dialer, PollInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("re-run of the init launch: %v", err)
	}
	after, _ := w.Cloud.Instances(ctx, spec.Name)
	if len(after) != len(before) {
		t.Errorf("re-run launched again: %d instances, had %d", len(after), len(before))
	}
	assertNoToken(t, leader, strings.Join(events, "\n"), res)
}

type hookFunc func(string)

func (h hookFunc) StepStarted(s plan.Step, at time.Time) { h("start " + s.ID) }
func (h hookFunc) StepFinished(s plan.Step, r apply.StepResult) {
	h(string(r.Status) + " " + s.ID + " " + r.Elapsed.String() + " " + r.Error)
}
