package apply

import (
	"context"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// leaveHook marks a terminated worker's node Down only when the step (or
// the wait) named for it starts: the Swarm notices a gone machine later.
type leaveHook struct {
	recHook
	w      *world
	downOn map[string]string // step id -> instance whose node goes Down
}

var _ WaitHook = (*leaveHook)(nil)

func (h *leaveHook) StepWaiting(s plan.Step, what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, "wait "+s.ID+": "+what)
	if id, ok := h.downOn["wait "+s.ID]; ok {
		h.w.swarm.markDown(id)
	}
}

func (h *leaveHook) StepStarted(s plan.Step, at time.Time) {
	h.recHook.StepStarted(s, at)
	if id, ok := h.downOn[s.ID]; ok {
		h.w.swarm.markDown(id)
	}
}

// TestRunLeavingWorkersOverlap scales two workers down with
// update.parallelism 1: the second worker's drain starts while the first's
// remove-node still waits for the Swarm to see its node Down (the node of
// the first goes Down only once the second's drain has started, so a
// one-by-one executor times out).
func TestRunLeavingWorkersOverlap(t *testing.T) {
	w := newWorld()
	if _, err := Run(context.Background(), bootstrapPlan(), w.deps()); err != nil {
		t.Fatal(err)
	}
	w.cloud.downLater = true
	insts, _ := w.cloud.Instances(context.Background(), "c1")
	var victims []providers.Instance
	for _, in := range insts {
		if in.Group == "workers/general" {
			victims = append(victims, in)
		}
	}
	if len(victims) != 2 {
		t.Fatalf("want 2 workers, have %d", len(victims))
	}
	var steps []plan.Step
	for i, v := range victims {
		n, node := string(rune('1'+i)), "node-"+v.ID
		steps = append(steps,
			plan.Step{ID: "drain-" + n, Action: plan.ActionDrain, Group: "workers/general", Instance: v.ID, Node: node},
			plan.Step{ID: "await-drained-" + n, Action: plan.ActionAwaitDrained, Group: "workers/general", Node: node, DependsOn: []string{"drain-" + n}},
			plan.Step{ID: "terminate-" + n, Action: plan.ActionTerminate, Group: "workers/general", Instance: v.ID, DependsOn: []string{"await-drained-" + n}},
			plan.Step{ID: "remove-node-" + n, Action: plan.ActionRemoveNode, Group: "workers/general", Instance: v.ID, Node: node, DependsOn: []string{"terminate-" + n}},
		)
	}
	c := testCluster()
	p := &plan.Plan{Cluster: "c1", Desired: c, Observation: plan.ObservationSummary{Fingerprint: "fp-leave"}, Steps: steps}
	h := &leaveHook{w: w, downOn: map[string]string{"drain-2": victims[0].ID, "wait remove-node-2": victims[1].ID}}
	d := w.deps()
	d.Hook = h
	res, err := Run(context.Background(), p, d)
	if err != nil {
		t.Fatalf("Run: %v\nevents: %v", err, h.events)
	}
	if got := res.IDs(StatusDone); len(got) != 8 {
		t.Fatalf("done = %v, want all 8", got)
	}
	// One node disrupted at a time all the same: the second drain starts
	// only after the first worker's instance is terminated.
	pos := map[string]int{}
	for i, e := range h.events {
		pos[e] = i
	}
	if pos["start drain-2"] < pos["done terminate-1 "] {
		t.Errorf("the second drain started before the first worker was gone: %v", h.events)
	}
	if pos["start drain-2"] > pos["done remove-node-1 "] {
		t.Errorf("the second drain waited for the first remove-node: %v", h.events)
	}
	// The view learns what each wait is for, once per change.
	for _, want := range []string{
		"wait await-drained-1: node node-" + victims[0].ID + " to stop its tasks",
		"wait await-drained-1: the tasks of node node-" + victims[0].ID + " to run elsewhere",
		"wait remove-node-2: the Swarm to see node node-" + victims[1].ID + " Down (its instance is gone)",
	} {
		n := 0
		for _, e := range h.events {
			if e == want {
				n++
			}
		}
		if n != 1 {
			t.Errorf("event %q seen %d times, want once: %v", want, n, h.events)
		}
	}
}
