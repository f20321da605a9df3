package apply

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// TestRemoveNodeWaitsForDown: a node whose instance is gone may pass
// through another state than Down (unknown, disconnected: seen on the AWS
// path under load) before the Swarm marks it Down; remove-node waits for
// Down and removes it without force, as Swarm requires.
func TestRemoveNodeWaitsForDown(t *testing.T) {
	for _, first := range []providers.NodeState{providers.NodeUnknown, providers.NodeDisconnected} {
		t.Run(string(first), func(t *testing.T) {
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
			w.cloud.insts[inst].State = providers.StateTerminated
			w.swarm.calls = nil
			waits := 0
			d := w.deps()
			d.Clock = hookClock{fakeClock: w.clock, onAfter: func() {
				waits++
				w.swarm.mu.Lock()
				defer w.swarm.mu.Unlock()
				switch waits {
				case 1:
					w.swarm.nodes[nodeID].State = first
				case 3:
					w.swarm.nodes[nodeID].State = providers.NodeDown
				}
			}}
			p := &plan.Plan{Cluster: "c1", Desired: testCluster(), Steps: []plan.Step{
				{ID: "remove-node-1", Action: plan.ActionRemoveNode, Group: "workers/general", Instance: inst, Node: nodeID},
			}}
			if _, err := Run(context.Background(), p, d); err != nil {
				t.Fatalf("Run = %v", err)
			}
			var removes []string
			for _, c := range w.swarm.calls {
				if strings.HasPrefix(c, "remove ") {
					removes = append(removes, c)
				}
			}
			if want := "remove " + nodeID + " force=false"; len(removes) != 1 || removes[0] != want {
				t.Errorf("removals %v, want [%s]", removes, want)
			}
			if waits < 3 {
				t.Errorf("remove-node waited %d polls, want it to wait until Down (3)", waits)
			}
		})
	}
}

// TestRemoveGhost: a ghost entry (a join that never completed) is removed
// without waiting for Down (an unknown one with force, a Down one without);
// one that an engine described since the plan was made (a join that
// completed after all) is left alone.
func TestRemoveGhost(t *testing.T) {
	w := newWorld()
	bootstrapSwarm(t, w)
	w.swarm.mu.Lock()
	w.swarm.nodes["ghost-1"] = &providers.Node{ID: "ghost-1", Role: providers.RoleWorker, State: providers.NodeUnknown}
	w.swarm.nodes["ghost-2"] = &providers.Node{ID: "ghost-2", Role: providers.RoleWorker, State: providers.NodeDown}
	w.swarm.nodes["joined"] = &providers.Node{ID: "joined", Hostname: "h-joined", Role: providers.RoleWorker, State: providers.NodeUnknown}
	w.swarm.calls = nil
	w.swarm.mu.Unlock()
	p := &plan.Plan{Cluster: "c1", Desired: testCluster(), Steps: []plan.Step{
		{ID: "remove-ghost-1", Action: plan.ActionRemoveNode, Group: "workers/general", Node: "ghost-1", Removal: true, Ghost: true},
		{ID: "remove-ghost-2", Action: plan.ActionRemoveNode, Group: "workers/general", Node: "ghost-2", Removal: true, Ghost: true},
		{ID: "remove-joined", Action: plan.ActionRemoveNode, Group: "workers/general", Node: "joined", Removal: true, Ghost: true},
	}}
	if _, err := Run(context.Background(), p, w.deps()); err != nil {
		t.Fatalf("Run = %v", err)
	}
	var removes []string
	for _, c := range w.swarm.calls {
		if strings.HasPrefix(c, "remove ") {
			removes = append(removes, c)
		}
	}
	slices.Sort(removes)
	if want := []string{"remove ghost-1 force=true", "remove ghost-2 force=false"}; !slices.Equal(removes, want) {
		t.Errorf("removals %v, want %v", removes, want)
	}
	if _, ok := w.swarm.nodes["joined"]; !ok {
		t.Error("a node an engine described since the plan was removed")
	}
}
