package docker_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/schema"
)

// TestRotateRecordAndDemoteSelf runs on a real swarm of three managers: a
// scheduled rotation goes plan → record → plan through real observations;
// a recorded rotation writes the swarm label in the same update (the old
// worker token stops working, the label carries no token), and the leader's
// endpoint demoting its own node succeeds although the engine's control
// socket goes away meanwhile.
func TestRotateRecordAndDemoteSelf(t *testing.T) {
	l := startLabs(t, lab.Options{Managers: 3, Cluster: "selfdemote"})[0]
	ctx := ctxFor(t, 5*time.Minute)
	found := must(l.Leader(ctx))(t)
	// The same endpoint, with its log lines in the test's output. Its
	// waits poll every few milliseconds, so a demotion of its own node
	// looks while the engine's control socket goes away.
	leader := must(docker.New(found.Host(), docker.WithTicker(docker.EveryInterval(5*time.Millisecond)), docker.WithLogger(slog.New(slog.NewTextHandler(testWriter{t}, nil)))))(t)
	t.Cleanup(func() { leader.Close() })

	// The scheduled rotation's round trip: the planner reads the swarm's
	// creation and label from a real observation, apply's record lands on
	// the swarm, and the next plan sees it.
	var planned time.Time
	t.Run("a scheduled rotation is planned, recorded and not planned again", func(t *testing.T) {
		spec := schema.Cluster{Name: l.Cluster, Provider: schema.Provider{Local: &schema.LocalProvider{Subnet: l.Subnet}},
			Managers: schema.Managers{Count: 3, Availability: "active"},
			Update:   schema.Update{Parallelism: 1, MaxSurge: 1, JoinTimeout: schema.Duration{Duration: 10 * time.Minute}},
			Schedule: schema.Schedule{RotateJoinTokens: "@daily"}, Safety: schema.Safety{MaxRemovalsPerApply: 5}}
		rotation := func(takenAt time.Time) (plan.Step, bool) {
			t.Helper()
			o := plan.Observed{Cluster: l.Cluster, TakenAt: takenAt, Instances: must(l.Cloud.Instances(ctx, l.Cluster))(t), Swarm: must(leader.Observe(ctx))(t)}
			p := must(plan.Compute(spec, o, plan.Source{}))(t)
			for _, s := range p.Steps {
				if s.Action == plan.ActionRotateJoinToken {
					return s, true
				}
			}
			return plan.Step{}, false
		}
		created := must(leader.Observe(ctx))(t).CreatedAt
		if created.IsZero() {
			t.Fatal("the observation has no swarm creation time")
		}
		if s, ok := rotation(created.Add(time.Minute)); ok && created.Truncate(24*time.Hour).Add(24*time.Hour).After(created.Add(time.Minute)) {
			t.Fatalf("a rotation is planned a minute after the swarm was created: %s", s.Reason)
		}
		takenAt := created.Truncate(24 * time.Hour).Add(48*time.Hour + 5*time.Minute)
		s, ok := rotation(takenAt)
		if !ok || !s.RotateWorker || !s.RotateManager || !strings.Contains(s.Reason, "schedule.rotateJoinTokens") {
			t.Fatalf("two days after its creation: rotation planned %v (%+v), want both tokens on schedule", ok, s)
		}
		if err := leader.RotateAndRecord(ctx, providers.JoinTokenRotation{Worker: s.RotateWorker, Manager: s.RotateManager, RecordAt: s.RecordRotatedAt}); err != nil {
			t.Fatal(err)
		}
		planned = s.RecordRotatedAt
		if s, ok := rotation(takenAt.Add(time.Hour)); ok {
			t.Fatalf("planned again after the record: %s", s.Reason)
		}
		if s, ok := rotation(takenAt.Add(24 * time.Hour)); !ok || !strings.Contains(s.Reason, "the last recorded rotation is "+providers.FormatRotated(planned)) {
			t.Fatalf("a day later: rotation planned %v (%q), want one naming the record", ok, s.Reason)
		}
	})

	t.Run("rotation records the swarm label and retires the old token", func(t *testing.T) {
		before := must(leader.JoinTokens(ctx))(t)
		at := planned.Add(24 * time.Hour)
		if err := leader.RotateAndRecord(ctx, providers.JoinTokenRotation{Worker: true, Manager: true, RecordAt: at}); err != nil {
			t.Fatal(err)
		}
		after := must(leader.JoinTokens(ctx))(t)
		if after.Worker == before.Worker || after.Manager == before.Manager {
			t.Fatalf("worker changed=%v manager changed=%v; want both rotated", after.Worker != before.Worker, after.Manager != before.Manager)
		}
		st := must(leader.Observe(ctx))(t)
		if st.CreatedAt.IsZero() || st.CreatedAt.After(time.Now()) {
			t.Errorf("observed swarm creation time %v, want a past time", st.CreatedAt)
		}
		got, ok := st.JoinTokensRotated()
		if !ok || !got.Equal(at) {
			t.Fatalf("observed label %q = %v (ok %v), want %v", st.Labels[providers.SwarmLabelJoinTokensRotated], got, ok, at)
		}
		for k, v := range st.Labels {
			if strings.Contains(v, "SWMTK") || strings.Contains(k, "SWMTK") {
				t.Errorf("swarm label %s carries a token", k)
			}
		}

		// An earlier time never moves the record back; a plain rotation
		// keeps it.
		if err := leader.RotateAndRecord(ctx, providers.JoinTokenRotation{Worker: true, RecordAt: at.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := leader.RotateJoinTokens(ctx, true, false); err != nil {
			t.Fatal(err)
		}
		if got, _ := must(leader.Observe(ctx))(t).JoinTokensRotated(); !got.Equal(at) {
			t.Errorf("after an earlier record and a plain rotation the label says %v, want %v kept", got, at)
		}
		current := must(leader.JoinTokens(ctx))(t)

		bare := must(l.Launch(ctx, "workers/extra", 1, nil))(t)[0]
		sw := must(l.Swarm(bare.ID))(t)
		addr := l.Managers[0].PrivateIP + ":2377"
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		err := sw.Join(jctx, addr, before.Worker, bare.PrivateIP)
		if !errors.Is(err, docker.ErrInvalidJoinToken) {
			t.Fatalf("join with the rotated-out token = %v, want ErrInvalidJoinToken", err)
		}
		if strings.Contains(err.Error(), "SWMTK") {
			t.Errorf("join error leaks a token: %q", err)
		}
		if err := sw.Join(jctx, addr, current.Worker, bare.PrivateIP); err != nil {
			t.Fatalf("join with the current token: %v", err)
		}
		if err := l.WaitNodes(ctx, leader, 4); err != nil {
			t.Fatalf("new worker never became ready: %v", err)
		}
	})

	t.Run("demoting the endpoint's own node", func(t *testing.T) {
		st := must(leader.Observe(ctx))(t)
		if !st.SelfIsLeader {
			t.Fatalf("endpoint %s is not the leader", leader.Host())
		}
		self := st.SelfID
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := leader.Demote(dctx, self); err != nil {
			t.Fatalf("Demote(own node) = %v, want nil", err)
		}
		info := must(leader.Client().Info(ctx))(t)
		if info.Swarm.ControlAvailable || info.Swarm.NodeID != self {
			t.Errorf("after Demote the endpoint's engine says control available %v, node %s; want false, %s", info.Swarm.ControlAvailable, info.Swarm.NodeID, self)
		}
		// A fresh inspect through another manager (the new leader, once
		// elected) shows the node as a worker.
		var others []string
		for _, m := range l.Managers {
			if ep := l.Cloud.Endpoint(m.ID); ep != leader.Host() {
				others = append(others, ep)
			}
		}
		if len(others) != 2 {
			t.Fatalf("want 2 other managers, have %v", others)
		}
		var node swarm.Node
		if err := lab.Poll(ctx, func() (bool, error) {
			nl, err := docker.FindLeader(ctx, others, docker.WithTicker(lab.Ticker))
			if err != nil {
				return false, nil // election under way
			}
			defer nl.Close()
			n, _, err := nl.Client().NodeInspectWithRaw(ctx, self)
			if err != nil {
				return false, nil
			}
			node = n
			return true, nil
		}); err != nil {
			t.Fatalf("no other manager could inspect node %s: %v", self, err)
		}
		if node.Spec.Role != swarm.NodeRoleWorker || node.ManagerStatus != nil {
			t.Errorf("node %s seen from the new leader: role %s, manager status %+v; want a worker", self, node.Spec.Role, node.ManagerStatus)
		}
	})
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
