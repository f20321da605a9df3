package apply

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// hookClock is a fakeClock that runs onAfter at every wait.
type hookClock struct {
	*fakeClock
	onAfter func()
}

func (c hookClock) After(d time.Duration) <-chan time.Time {
	c.onAfter()
	return c.fakeClock.After(d)
}

// TestRemoveNodeFence: remove-node of a node whose instance is gone waits
// until the Swarm sees it Down, then checks leadership (and the lease)
// again before RemoveNode; a node that vanished meanwhile counts as removed.
func TestRemoveNodeFence(t *testing.T) {
	tests := []struct {
		name string
		// during runs at the first wait; atRemove at RemoveNode.
		during, atRemove func(w *world, nodeID string)
		wantErr          string
		wantRemoved      bool
	}{
		{
			name:        "down, still leader: removed",
			during:      func(w *world, id string) {},
			wantRemoved: true,
		},
		{
			name: "leadership lost during the wait: not removed",
			during: func(w *world, id string) {
				w.swarm.mu.Lock()
				w.swarm.leader = false
				w.swarm.mu.Unlock()
			},
			wantErr: "not the Swarm leader",
		},
		{
			name: "removed by someone else during the wait: done",
			during: func(w *world, id string) {
				w.swarm.mu.Lock()
				delete(w.swarm.nodes, id)
				w.swarm.mu.Unlock()
			},
		},
		{
			name:   "vanished between the wait and RemoveNode: done",
			during: func(w *world, id string) {},
			atRemove: func(w *world, id string) {
				w.swarm.mu.Lock()
				delete(w.swarm.nodes, id)
				w.swarm.mu.Unlock()
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			bootstrapSwarm(t, w)
			res, err := Run(context.Background(), workerPlan("general"), w.deps())
			if err != nil {
				t.Fatal(err)
			}
			inst := res.Steps[0].Instances[0]
			nodeID := ""
			for id, n := range w.swarm.nodes {
				if n.InstanceID() == inst {
					nodeID = id
				}
			}
			// Its machine is gone; the Swarm still says Ready.
			w.cloud.insts[inst].State = providers.StateTerminated
			w.swarm.calls = nil
			waits := 0
			d := w.deps()
			d.Clock = hookClock{fakeClock: w.clock, onAfter: func() {
				if waits++; waits == 1 {
					w.swarm.markDown(inst)
					tc.during(w, nodeID)
				}
			}}
			if tc.atRemove != nil {
				w.swarm.beforeRemove = func(id string) { tc.atRemove(w, id) }
			}
			p := &plan.Plan{Cluster: "c1", Desired: testCluster(), Steps: []plan.Step{
				{ID: "remove-node-1", Action: plan.ActionRemoveNode, Group: "workers/general", Instance: inst, Node: nodeID},
			}}
			_, err = Run(context.Background(), p, d)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Run = %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.wantErr)
			}
			removed := false
			for _, c := range w.swarm.calls {
				removed = removed || strings.HasPrefix(c, "remove ")
			}
			if removed != tc.wantRemoved {
				t.Errorf("RemoveNode called: %v, want %v (calls %v)", removed, tc.wantRemoved, w.swarm.calls)
			}
			if waits == 0 {
				t.Error("remove-node did not wait for the node to be Down")
			}
		})
	}
}
