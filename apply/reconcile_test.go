package apply

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"
)

func TestReconcilerLeaderOnly(t *testing.T) {
	sched, err := cron.ParseStandard("@every 1m")
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leaderAnswers := []bool{false, true, true, false, true}
	var calls int
	var passTimes []time.Duration
	start := clock.Now()
	r := &Reconciler{
		Schedule: sched,
		Clock:    clock,
		Leader: func(context.Context) (bool, error) {
			l := leaderAnswers[calls]
			calls++
			if calls == len(leaderAnswers) {
				cancel()
			}
			return l, nil
		},
		Pass: func(context.Context) (int, error) {
			passTimes = append(passTimes, clock.Now().Sub(start))
			if len(passTimes) == 2 {
				return 1, errors.New("step x failed")
			}
			return 3, nil
		},
	}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Passes ran only when leader, at the scheduled minutes.
	if diff := cmp.Diff([]time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}, passTimes); diff != "" {
		t.Errorf("pass times (-want +got):\n%s", diff)
	}
	st := r.Status()
	if st.Passes != 3 || st.Skipped != 2 || st.LastSteps != 3 || st.LastError != "" {
		t.Errorf("status = %+v", st)
	}
}
