package apply

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/schema"
)

// downHook marks the node of the instances of a launch step Down as soon as
// its await-join finishes (a new node that dies during update.monitor).
type downHook struct {
	recHook
	w    *world
	step string
	res  map[string][]string
}

func (h *downHook) StepFinished(s plan.Step, r StepResult) {
	h.recHook.StepFinished(s, r)
	if r.Status == StatusDone && len(r.Instances) > 0 {
		h.res[s.ID] = r.Instances
	}
	if s.ID == h.step {
		for _, id := range h.res[s.LaunchStep] {
			h.w.swarm.markDown(id)
		}
	}
}

func TestRunBatches(t *testing.T) {
	tests := []struct {
		name       string
		killBatch1 bool
		// otherGroup puts the second batch's steps in group workers/b,
		// whose batches do not wait for workers/a's.
		otherGroup bool
		wantErr    string
		wantNotRun []string
	}{
		{name: "delay and monitor pass"},
		{
			name: "monitor sees a new node go down", killBatch1: true,
			wantErr:    "rollout of workers/a stopped before batch 2: new node(s) of i-0002 (down) not Ready within update.monitor 1m0s",
			wantNotRun: []string{"launch-workers-b-1", "await-join-workers-b-1", "label-workers-b-1"},
		},
		{name: "another group's down node does not stop this group", killBatch1: true, otherGroup: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			bootstrapSwarm(t, w)
			p := workerPlan("a")
			b := workerPlan("b")
			p.Desired.Workers["b"] = b.Desired.Workers["b"]
			p.Desired.Update.Delay = schema.Duration{Duration: 30 * time.Second}
			p.Desired.Update.Monitor = schema.Duration{Duration: time.Minute}
			for i := range p.Steps {
				p.Steps[i].Batch = 1
			}
			for i := range b.Steps {
				b.Steps[i].Batch = 2
				if !tc.otherGroup {
					b.Steps[i].Group = "workers/a"
				}
			}
			p.Steps = append(p.Steps, b.Steps...)
			d := w.deps()
			if tc.killBatch1 {
				d.Hook = &downHook{w: w, step: "await-join-workers-a-1", res: map[string][]string{}}
			}
			start := w.clock.Now()
			res, err := Run(context.Background(), p, d)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if el := w.clock.Now().Sub(start); el < 90*time.Second && !tc.otherGroup {
					t.Errorf("batches were %s apart in virtual time, want >= delay+monitor (90s)", el)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantNotRun, res.IDs(StatusNotRun)); diff != "" {
				t.Errorf("not run (-want +got):\n%s", diff)
			}
		})
	}
}
