package observe

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// fakeCloud and fakeSwarm count calls; only the methods Take uses answer.
type fakeCloud struct {
	providers.Cloud
	insts []providers.Instance
	err   error
	calls int
}

var _ providers.Cloud = (*fakeCloud)(nil)

func (f *fakeCloud) Instances(_ context.Context, cluster string) ([]providers.Instance, error) {
	f.calls++
	return f.insts, f.err
}

type fakeSwarm struct {
	providers.Swarm
	st    providers.SwarmState
	err   error
	calls int
}

var _ providers.Swarm = (*fakeSwarm)(nil)

func (f *fakeSwarm) Observe(context.Context) (providers.SwarmState, error) {
	f.calls++
	return f.st, f.err
}

func TestTake(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("X", 3600))
	cloud := &fakeCloud{insts: []providers.Instance{
		{ID: "i-2", Cluster: "prod", Group: "managers", State: providers.StateRunning},
		{ID: "i-1", Cluster: "prod", Group: "workers/web", State: providers.StateRunning},
		{ID: "i-9", Cluster: "other", Group: "workers/web", State: providers.StateRunning},
	}}
	sw := &fakeSwarm{st: providers.SwarmState{Active: true, Nodes: []providers.Node{{ID: "n-b"}, {ID: "n-a"}}}}
	got, err := Take(context.Background(), cloud, sw, "prod", now)
	if err != nil {
		t.Fatal(err)
	}
	want := plan.Observed{
		FormatVersion: plan.FormatVersion, Cluster: "prod", TakenAt: now.UTC(),
		Instances: []providers.Instance{cloud.insts[1], cloud.insts[0]},
		Unowned:   []providers.Instance{cloud.insts[2]},
		Swarm:     providers.SwarmState{Active: true, Nodes: []providers.Node{{ID: "n-a"}, {ID: "n-b"}}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Take (-want +got):\n%s", d)
	}
	if cloud.calls != 1 || sw.calls != 1 {
		t.Errorf("calls: cloud %d, swarm %d; want one each", cloud.calls, sw.calls)
	}
}

func TestTakeErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		cloud *fakeCloud
		swarm *fakeSwarm
		want  string
	}{
		{"cloud", &fakeCloud{err: boom}, &fakeSwarm{}, "failed to list the instances of cluster prod: boom"},
		{"swarm", &fakeCloud{}, &fakeSwarm{err: boom}, "failed to observe the swarm of cluster prod: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Take(context.Background(), tc.cloud, tc.swarm, "prod", time.Time{})
			if err == nil || err.Error() != tc.want || !errors.Is(err, boom) {
				t.Fatalf("err = %v, want %q wrapping boom", err, tc.want)
			}
		})
	}
}
