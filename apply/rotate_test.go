package apply

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// recordingSwarm is the fake swarm with the recorder the Docker provider
// has: it rotates through the fake and keeps the swarm label. Its nodes
// were all created at nodesCreated (the provider records no earlier than
// the latest node's creation).
type recordingSwarm struct {
	*fakeSwarm
	labels       map[string]string
	nodesCreated time.Time
}

var (
	_ providers.Swarm             = (*recordingSwarm)(nil)
	_ providers.JoinTokenRecorder = (*recordingSwarm)(nil)
)

func (s *recordingSwarm) RotateAndRecord(ctx context.Context, r providers.JoinTokenRotation) error {
	if err := s.fakeSwarm.RotateJoinTokens(ctx, r.Worker, r.Manager); err != nil {
		return err
	}
	if r.Worker && r.Manager {
		at := r.RecordAt
		if s.nodesCreated.After(at) {
			at = s.nodesCreated
		}
		s.labels[providers.SwarmLabelJoinTokensRotated] = providers.FormatRotated(at)
	}
	return nil
}

func TestRotateRecords(t *testing.T) {
	at := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		step      plan.Step
		recorder  bool
		wantErr   string // "" for success
		wantCalls []string
		wantLabel string
	}{
		{
			name:     "a recorded rotation writes the label through the recorder",
			step:     plan.Step{RotateWorker: true, RotateManager: true, RecordRotatedAt: at},
			recorder: true, wantCalls: []string{"rotate true true"}, wantLabel: "2026-11-22T00:00:00Z",
		},
		{
			name:     "a rotation of both tokens without a time is recorded at the latest node's creation",
			step:     plan.Step{RotateWorker: true, RotateManager: true},
			recorder: true, wantCalls: []string{"rotate true true"}, wantLabel: "2026-11-21T23:00:00.5Z",
		},
		{
			name:     "the nodes' creation wins over an earlier time of the step",
			step:     plan.Step{RotateWorker: true, RotateManager: true, RecordRotatedAt: at.Add(-2 * time.Hour)},
			recorder: true, wantCalls: []string{"rotate true true"}, wantLabel: "2026-11-21T23:00:00.5Z",
		},
		{
			name:     "a rotation of one token records nothing",
			step:     plan.Step{RotateWorker: true},
			recorder: true, wantCalls: []string{"rotate true false"},
		},
		{
			name:      "without a recorder, a rotation without a time still rotates",
			step:      plan.Step{RotateWorker: true, RotateManager: true},
			wantCalls: []string{"rotate true true"},
		},
		{
			name:    "a recorded rotation through a swarm that cannot record fails and rotates nothing",
			step:    plan.Step{RotateWorker: true, RotateManager: true, RecordRotatedAt: at},
			wantErr: "cannot record the rotation as the swarm label swarmsync.join-tokens-rotated",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			if _, err := Run(context.Background(), bootstrapPlan(), w.deps()); err != nil {
				t.Fatal(err)
			}
			w.swarm.calls = nil
			rotations := w.swarm.rotations
			d := w.deps()
			rs := &recordingSwarm{fakeSwarm: w.swarm, labels: map[string]string{}, nodesCreated: at.Add(-time.Hour + 500*time.Millisecond)}
			if tc.recorder {
				d.Swarm = rs
			}
			s := tc.step
			s.ID, s.Action = "rotate-join-token-worker-manager", plan.ActionRotateJoinToken
			p := &plan.Plan{Cluster: "c1", Desired: testCluster(), Observation: plan.ObservationSummary{Fingerprint: "fp-rot"}, Steps: []plan.Step{s}}
			_, err := Run(context.Background(), p, d)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if w.swarm.rotations != rotations {
					t.Errorf("the tokens were rotated %d time(s) although the step failed", w.swarm.rotations-rotations)
				}
				assertNoSecrets(t, w, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var rot []string
			for _, c := range w.swarm.calls {
				if strings.HasPrefix(c, "rotate") {
					rot = append(rot, c)
				}
			}
			if diff := cmp.Diff(tc.wantCalls, rot); diff != "" {
				t.Errorf("rotations (-want +got):\n%s", diff)
			}
			if got := rs.labels[providers.SwarmLabelJoinTokensRotated]; got != tc.wantLabel {
				t.Errorf("recorded label = %q, want %q", got, tc.wantLabel)
			}
		})
	}
}
