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
// has: it rotates through the fake and keeps the swarm label.
type recordingSwarm struct {
	*fakeSwarm
	labels map[string]string
}

var (
	_ providers.Swarm             = (*recordingSwarm)(nil)
	_ providers.JoinTokenRecorder = (*recordingSwarm)(nil)
)

func (s *recordingSwarm) RotateAndRecord(ctx context.Context, r providers.JoinTokenRotation) error {
	if err := s.fakeSwarm.RotateJoinTokens(ctx, r.Worker, r.Manager); err != nil {
		return err
	}
	if !r.RecordAt.IsZero() {
		s.labels[providers.SwarmLabelJoinTokensRotated] = providers.FormatRotated(r.RecordAt)
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
			name:     "a rotation without a time records nothing",
			step:     plan.Step{RotateWorker: true},
			recorder: true, wantCalls: []string{"rotate true false"},
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
			rs := &recordingSwarm{fakeSwarm: w.swarm, labels: map[string]string{}}
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
