package apply

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/plan"
)

// stopAfter closes stop once the step named id has finished.
type stopAfter struct {
	recHook
	id   string
	stop chan struct{}
}

func (h *stopAfter) StepFinished(s plan.Step, r StepResult) {
	h.recHook.StepFinished(s, r)
	if s.ID == h.id {
		close(h.stop)
	}
}

// TestRunStopsBetweenSteps: closing Deps.Stop lets the running step finish
// and starts no other; the rest is left not run, and the error says why.
func TestRunStopsBetweenSteps(t *testing.T) {
	w := newWorld()
	h := &stopAfter{id: "await-join-managers-1", stop: make(chan struct{})}
	d := w.deps()
	d.Hook, d.Stop = h, h.stop
	res, err := Run(context.Background(), bootstrapPlan(), d)
	if err == nil || !strings.Contains(err.Error(), "apply stopped between steps") {
		t.Fatalf("err = %v, want a stop between steps", err)
	}
	if diff := cmp.Diff([]string{"launch-managers-1", "await-join-managers-1"}, res.IDs(StatusDone)); diff != "" {
		t.Errorf("done (-want +got):\n%s", diff)
	}
	if got := len(res.IDs(StatusNotRun)); got != 7 {
		t.Errorf("%d steps not run, want 7: %+v", got, res.Steps)
	}
	if w.cloud.live() != 1 {
		t.Errorf("live instances = %d, want 1", w.cloud.live())
	}
}
