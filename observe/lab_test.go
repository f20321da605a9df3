package observe

import (
	"context"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// TestTakeLab observes a real Swarm (dockerd per network namespace) through
// the local provider and the Docker provider: every node is linked to its
// instance by the engine label, leadership is seen, and two observations of
// the unchanged cluster have the same fingerprint.
func TestTakeLab(t *testing.T) {
	l := lab.Start(t, lab.Options{Managers: 1, Workers: 1, NoImage: true, Cluster: "obs"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sw, err := l.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o1, err := Take(ctx, l.Cloud, sw, l.Cluster, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(o1.Instances) != 2 || len(o1.Swarm.Nodes) != 2 || !o1.Swarm.Active {
		t.Fatalf("observed %d instances, %d nodes (active %v); want 2 and 2", len(o1.Instances), len(o1.Swarm.Nodes), o1.Swarm.Active)
	}
	instOf, how := plan.Match(o1.Instances, o1.Swarm.Nodes)
	leaders := 0
	for i, n := range o1.Swarm.Nodes {
		if instOf[i] < 0 || how[i] != plan.MatchByLabel {
			t.Errorf("node %s not matched by engine label (instance %d, %q)", n.ID, instOf[i], how[i])
		}
		if n.Leader {
			leaders++
			if n.Role != providers.RoleManager {
				t.Errorf("leader %s is a %s", n.ID, n.Role)
			}
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders observed, want 1", leaders)
	}
	o2, err := Take(ctx, l.Cloud, sw, l.Cluster, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if o1.Fingerprint() != o2.Fingerprint() {
		a, _ := plan.MarshalObserved(o1)
		b, _ := plan.MarshalObserved(o2)
		t.Errorf("fingerprint changed between two observations of an unchanged cluster:\n%s\n%s", a, b)
	}
}
