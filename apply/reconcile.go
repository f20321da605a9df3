package apply

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Schedule says when the next pass is due (robfig/cron's Schedule).
type Schedule interface {
	Next(time.Time) time.Time
}

// PassFunc runs one reconcile pass (observe, plan, apply) as the leader and
// reports how many steps it ran. It must fence on leadership itself
// (Run does, before every mutating step).
type PassFunc func(ctx context.Context) (steps int, err error)

// Reconciler is the loop behind `apply --auto`: on every manager it wakes on
// the schedule, and only the one whose endpoint is the Swarm leader acts.
type Reconciler struct {
	Schedule Schedule
	Clock    Clock
	// Leader reports whether this process's endpoint is the leader now.
	Leader func(ctx context.Context) (bool, error)
	Pass   PassFunc
	Logger *slog.Logger

	mu     sync.Mutex
	status LoopStatus
}

// LoopStatus is what the status endpoint reports. LastError never carries
// a secret (it comes from Run, which redacts).
type LoopStatus struct {
	Passes    int       `json:"passes"`
	Leader    bool      `json:"leader"`
	LastStart time.Time `json:"last_start,omitzero"`
	LastEnd   time.Time `json:"last_end,omitzero"`
	LastSteps int       `json:"last_steps"`
	LastError string    `json:"last_error,omitempty"`
	NextPass  time.Time `json:"next_pass,omitzero"`
	// Skipped counts passes skipped because this endpoint was not leader.
	Skipped int `json:"skipped"`
}

// Status returns a copy of the loop's status.
func (r *Reconciler) Status() LoopStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Run does a full pass at once (to catch what happened while no leader
// acted), then one on every scheduled time, until ctx ends. A failed pass is
// reported in the status and retried at the next scheduled time.
func (r *Reconciler) Run(ctx context.Context) error {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for ctx.Err() == nil {
		r.once(ctx, log)
		now := r.Clock.Now()
		next := r.Schedule.Next(now)
		r.mu.Lock()
		r.status.NextPass = next
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-r.Clock.After(next.Sub(now)):
		}
	}
	return nil
}

func (r *Reconciler) once(ctx context.Context, log *slog.Logger) {
	leader, err := r.Leader(ctx)
	if err != nil || !leader {
		r.mu.Lock()
		r.status.Leader = false
		r.status.Skipped++
		r.mu.Unlock()
		if err != nil {
			log.Info("not acting: leadership unknown", "error", err.Error())
		} else {
			log.Debug("not acting: this endpoint is not the leader")
		}
		return
	}
	start := r.Clock.Now()
	r.mu.Lock()
	r.status.Leader = true
	r.status.LastStart = start
	r.mu.Unlock()
	steps, err := r.Pass(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Passes++
	r.status.LastEnd = r.Clock.Now()
	r.status.LastSteps = steps
	r.status.LastError = ""
	if err != nil {
		r.status.LastError = err.Error()
		log.Warn("reconcile pass failed", "steps", steps, "error", err.Error())
		return
	}
	log.Info("reconcile pass done", "steps", steps, "elapsed", r.status.LastEnd.Sub(start).String())
}
