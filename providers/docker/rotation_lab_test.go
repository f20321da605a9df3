package docker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// TestRotationWatermark runs on a real swarm (one manager, one worker) the
// facts joinTokens.rotateAfterJoin is planned from: the node that created
// the swarm is stamped with the swarm's creation (it used no token), a node
// that joined is newer; RotateAndRecord records no earlier than the latest
// node's creation, whatever the caller's clock says, so the next plan does
// not rotate again; and a node that joins after the rotation (the manager's
// clock) is newer than the record and is seen.
func TestRotationWatermark(t *testing.T) {
	l := startLabs(t, lab.Options{Managers: 1, Workers: 1, Cluster: "watermark", NoImage: true})[0]
	ctx := ctxFor(t, 4*time.Minute)
	leader := must(l.Leader(ctx))(t)
	spec := schema.Cluster{Name: l.Cluster, Provider: schema.Provider{Local: &schema.LocalProvider{Subnet: l.Subnet}},
		Managers:   schema.Managers{Count: 1, Availability: "active"},
		Workers:    map[string]schema.WorkerGroup{"lab": {Count: 1, Availability: "active"}},
		Update:     schema.Update{Parallelism: 1, MaxSurge: 1, JoinTimeout: schema.Duration{Duration: 10 * time.Minute}},
		Safety:     schema.Safety{MaxRemovalsPerApply: 5},
		JoinTokens: schema.JoinTokens{RotateAfterJoin: true}}
	// joinedAfter plans from a real observation and returns the reason of
	// the rotation's "joined after" trigger ("" when it does not fire).
	joinedAfter := func() string {
		t.Helper()
		o := plan.Observed{Cluster: l.Cluster, TakenAt: time.Now().UTC(), Instances: must(l.Cloud.Instances(ctx, l.Cluster))(t), Swarm: must(leader.Observe(ctx))(t)}
		p := must(plan.Compute(spec, o, plan.Source{}))(t)
		for _, s := range p.Steps {
			if s.Action == plan.ActionRotateJoinToken && strings.Contains(s.Reason, "joined after") {
				if !s.RotateWorker || !s.RotateManager {
					t.Errorf("rotation %+v: want both tokens", s)
				}
				return s.Reason
			}
		}
		return ""
	}

	st := must(leader.Observe(ctx))(t)
	var initNode, worker providers.Node
	for _, n := range st.Nodes {
		if n.Role == providers.RoleManager {
			initNode = n
		} else {
			worker = n
		}
	}
	gap := initNode.CreatedAt.Sub(st.CreatedAt)
	t.Logf("swarm created %s; its first node %s later; the worker %s later", st.CreatedAt.Format(time.RFC3339Nano), gap, worker.CreatedAt.Sub(st.CreatedAt))
	// The planner takes the earliest node stamped within 100ms of the
	// swarm's creation for the one that created it (plan.initNodeSkew).
	if gap.Abs() > 100*time.Millisecond {
		t.Errorf("the node that created the swarm is stamped %s from the swarm's creation, want within 100ms", gap)
	}
	if !worker.CreatedAt.After(st.CreatedAt.Add(100 * time.Millisecond)) {
		t.Errorf("the worker joined %s after the swarm's creation, want more than 100ms", worker.CreatedAt.Sub(st.CreatedAt))
	}
	if _, ok := st.JoinTokensRotated(); ok {
		t.Fatalf("a new swarm has a recorded rotation: %v", st.Labels)
	}
	if why := joinedAfter(); !strings.Contains(why, "1 node(s) joined after the swarm's creation") || !strings.Contains(why, worker.ID) {
		t.Fatalf("no record yet, a worker joined: reason %q, want one naming %s only", why, worker.ID)
	}

	// swarmsync's clock an hour behind the manager's: the record is the
	// worker's creation, to the nanosecond.
	if err := leader.RotateAndRecord(ctx, providers.JoinTokenRotation{Worker: true, Manager: true, RecordAt: time.Now().Add(-time.Hour).Truncate(time.Second)}); err != nil {
		t.Fatal(err)
	}
	st = must(leader.Observe(ctx))(t)
	rec, ok := st.JoinTokensRotated()
	if !ok || !rec.Equal(worker.CreatedAt) {
		t.Fatalf("recorded %q (%v), want the worker's creation %s", st.Labels[providers.SwarmLabelJoinTokensRotated], ok, worker.CreatedAt.Format(time.RFC3339Nano))
	}
	if why := joinedAfter(); why != "" {
		t.Fatalf("after the recorded rotation the plan rotates again: %q", why)
	}

	// A node that joins after the rotation, with the new token.
	tokens := must(leader.JoinTokens(ctx))(t)
	joined := must(l.Launch(ctx, "workers/lab", 1, lab.JoinScript(tokens.Worker, l.Managers[0].PrivateIP+":2377")))(t)
	l.Workers = append(l.Workers, joined...)
	if err := l.WaitNodes(ctx, leader, 3); err != nil {
		t.Fatal(err)
	}
	if why := joinedAfter(); !strings.Contains(why, "1 node(s) joined after the last recorded rotation ("+providers.FormatRotated(rec)+")") {
		t.Fatalf("a node joined after the recorded rotation: reason %q, want it seen", why)
	}
	if err := leader.RotateAndRecord(ctx, providers.JoinTokenRotation{Worker: true, Manager: true}); err != nil {
		t.Fatal(err)
	}
	if why := joinedAfter(); why != "" {
		t.Fatalf("after the second rotation the plan rotates again: %q", why)
	}
}
