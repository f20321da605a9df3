package apply

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// manualClock is a virtual clock that moves only when the test advances it.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []manualWaiter
}

type manualWaiter struct {
	at time.Time
	ch chan time.Time
}

var _ Clock = (*manualClock)(nil)

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, manualWaiter{c.now.Add(d), ch})
	return ch
}

// Advance moves time by d and fires every waiter due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// waiting reports whether a waiter is due at t.
func (c *manualClock) waiting(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiters {
		if w.at.Equal(t) {
			return true
		}
	}
	return false
}

// eventually waits (bounded, in real time) until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// loop is a Reconciler under test with a controllable leader and spec.
type loop struct {
	t       *testing.T
	r       *Reconciler
	clock   *manualClock
	leader  atomic.Bool
	lerr    atomic.Value // error
	checks  atomic.Int32
	mu      sync.Mutex
	commit  string
	sched   Schedule
	loadErr error
	applyFn func(ctx context.Context) (Applied, error)
	applied []string // trigger:commit of each Apply
	closed  int
	start   time.Time
}

func every(t *testing.T, spec string) Schedule {
	t.Helper()
	s, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newLoop(t *testing.T) *loop {
	l := &loop{t: t, clock: newManualClock(), commit: "c1"}
	l.start = l.clock.Now()
	l.r = &Reconciler{
		Schedule: every(t, "@every 1m"),
		Clock:    l.clock,
		Leader: func(context.Context) (bool, error) {
			l.checks.Add(1)
			if e, _ := l.lerr.Load().(error); e != nil {
				return false, e
			}
			return l.leader.Load(), nil
		},
		Load: func(context.Context) (Loaded, error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			ld := Loaded{Commit: l.commit, Schedule: l.sched, PauseOnFailure: true, Close: func() { l.mu.Lock(); l.closed++; l.mu.Unlock() }}
			if l.loadErr != nil {
				return ld, l.loadErr
			}
			ld.Apply = func(ctx context.Context) (Applied, error) {
				l.mu.Lock()
				l.applied = append(l.applied, l.r.status.LastTrigger+":"+ld.Commit)
				fn := l.applyFn
				l.mu.Unlock()
				if fn != nil {
					return fn(ctx)
				}
				return Applied{Steps: 0}, nil
			}
			return ld, nil
		},
	}
	return l
}

func (l *loop) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.r.Run(ctx); close(done) }()
	l.t.Cleanup(func() { cancel(); <-done })
}

// passes waits until n passes (or skips) have finished and the loop has
// scheduled the next one.
func (l *loop) settled(passes, skipped int) LoopStatus {
	l.t.Helper()
	var st LoopStatus
	eventually(l.t, "the loop to settle", func() bool {
		st = l.r.Status()
		return st.Passes == passes && st.Skipped == skipped && !st.NextPass.IsZero() && !st.NextPass.Before(st.LastEnd)
	})
	return st
}

func (l *loop) appliedList() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.applied...)
}

// TestReconcilerLeaderOnly: a follower skips; becoming leader starts a pass
// within one leadership check (not at the next scheduled time); losing it
// makes scheduled passes skip again.
func TestReconcilerLeaderOnly(t *testing.T) {
	l := newLoop(t)
	l.run()
	l.settled(0, 1)
	l.leader.Store(true)
	l.clock.Advance(time.Second)
	st := l.settled(1, 1)
	if st.LastTrigger != TriggerLeader || st.LastStart.Sub(l.start) != time.Second {
		t.Errorf("pass on becoming leader: trigger %q at +%s, want %q at +1s", st.LastTrigger, st.LastStart.Sub(l.start), TriggerLeader)
	}
	l.clock.Advance(time.Minute) // @every 1m counts from the last pass
	st = l.settled(2, 1)
	if st.LastTrigger != TriggerSchedule {
		t.Errorf("trigger = %q, want schedule", st.LastTrigger)
	}
	l.leader.Store(false)
	l.clock.Advance(time.Minute)
	l.settled(2, 2)
	if diff := cmp.Diff([]string{"leader:c1", "schedule:c1"}, l.appliedList()); diff != "" {
		t.Errorf("applies (-want +got):\n%s", diff)
	}
	if l.closed != 2 {
		t.Errorf("closed %d passes' clients, want 2", l.closed)
	}
}

// TestReconcilerLeadershipUnknown: a failing leadership check is reported
// in the status, and the pass is counted as skipped for that reason.
func TestReconcilerLeadershipUnknown(t *testing.T) {
	l := newLoop(t)
	var hook recLoopHook
	l.r.Hook = &hook
	l.lerr.Store(errors.New("Cannot connect to the Docker daemon"))
	l.run()
	st := l.settled(0, 1)
	if st.Leader || st.LeaderError != "Cannot connect to the Docker daemon" {
		t.Errorf("status = %+v, want the leadership error", st)
	}
	if got := hook.results(); len(got) != 1 || got[0] != ResultUnknown {
		t.Errorf("pass results = %q, want [%s]", got, ResultUnknown)
	}
}

// TestReconcilerTriggersCoalesce: deliveries during a pass make exactly one
// more pass, at once.
func TestReconcilerTriggersCoalesce(t *testing.T) {
	l := newLoop(t)
	l.leader.Store(true)
	release := make(chan struct{})
	var inPass atomic.Bool
	l.applyFn = func(ctx context.Context) (Applied, error) {
		if inPass.CompareAndSwap(false, true) {
			<-release
		}
		return Applied{}, nil
	}
	l.run()
	eventually(t, "the first pass to start", inPass.Load)
	for range 5 {
		l.r.Trigger(TriggerWebhook)
	}
	close(release)
	st := l.settled(2, 0)
	if st.LastTrigger != TriggerWebhook || !st.LastStart.Equal(l.start) {
		t.Errorf("second pass: %q at %s, want webhook at once", st.LastTrigger, st.LastStart)
	}
	if diff := cmp.Diff([]string{"start:c1", "webhook:c1"}, l.appliedList()); diff != "" {
		t.Errorf("applies (-want +got):\n%s", diff)
	}
}

// TestReconcilerScheduleFromSpec: each pass's spec sets the schedule.
func TestReconcilerScheduleFromSpec(t *testing.T) {
	l := newLoop(t)
	l.leader.Store(true)
	l.sched = every(t, "@every 5m")
	l.run()
	st := l.settled(1, 0)
	if got := st.NextPass.Sub(l.start); got != 5*time.Minute {
		t.Errorf("next pass in %s, want 5m (the spec's schedule)", got)
	}
}

// TestReconcilerBackoff: consecutive failures wait base·2^(n-1) when that
// is later than the schedule; a success resets it.
func TestReconcilerBackoff(t *testing.T) {
	l := newLoop(t)
	l.leader.Store(true)
	l.loadErr = errors.New("failed to fetch: connection refused")
	l.r.BackoffBase = 10 * time.Second
	l.run()
	var waits []time.Duration
	for n := 1; n <= 6; n++ {
		st := l.settled(n, 0)
		if st.Failures != n || st.LastResult != ResultFailed || st.LastError == "" {
			t.Fatalf("pass %d: status %+v", n, st)
		}
		wait := st.NextPass.Sub(st.LastEnd)
		waits = append(waits, wait)
		if n == 6 {
			l.mu.Lock()
			l.loadErr = nil
			l.mu.Unlock()
		}
		l.clock.Advance(wait)
	}
	want := []time.Duration{time.Minute, time.Minute, time.Minute, 80 * time.Second, 160 * time.Second, 320 * time.Second}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Errorf("waits after each failure (-want +got):\n%s", diff)
	}
	st := l.settled(7, 0)
	if st.Failures != 0 || st.NextPass.Sub(st.LastEnd) != time.Minute || st.LastSuccess.IsZero() {
		t.Errorf("after a success: %+v", st)
	}
}

// TestReconcilerPause: a failed step of a rolling replacement under
// failureAction pause stops applying at that commit (shown in the status),
// until the commit changes; another failed step only backs off.
func TestReconcilerPause(t *testing.T) {
	l := newLoop(t)
	l.leader.Store(true)
	var hook recLoopHook
	l.r.Hook = &hook
	// A failed step outside a replacement batch backs off, no pause.
	l.applyFn = func(context.Context) (Applied, error) {
		return Applied{Steps: 1, Plan: &plan.Plan{Steps: []plan.Step{{ID: "remove"}}},
			Result: &Result{Steps: []StepResult{{ID: "remove", Action: plan.ActionRemoveNode, Status: StatusFailed}}}}, errors.New("step remove failed")
	}
	l.run()
	st := l.settled(1, 0)
	if st.PausedAt != "" || st.Failures != 1 {
		t.Fatalf("status = %+v, want a failure, no pause", st)
	}
	l.mu.Lock()
	l.applyFn = func(context.Context) (Applied, error) {
		return Applied{Steps: 2, Plan: &plan.Plan{Steps: []plan.Step{{ID: "launch", Batch: 1}, {ID: "join", Batch: 1}}},
			Result: &Result{Steps: []StepResult{{ID: "launch", Action: plan.ActionLaunch, Status: StatusFailed}, {ID: "join", Status: StatusNotRun}}}}, errors.New("step launch failed")
	}
	l.mu.Unlock()
	l.clock.Advance(time.Minute)
	st = l.settled(2, 0)
	if st.PausedAt != "c1" || st.LastResult != ResultFailed || st.PauseError != "step launch failed" {
		t.Fatalf("status = %+v, want paused at c1", st)
	}
	l.clock.Advance(time.Minute)
	st = l.settled(3, 0)
	if st.LastResult != ResultPaused || st.PausedAt != "c1" {
		t.Errorf("status = %+v, want still paused", st)
	}
	l.mu.Lock()
	l.commit, l.applyFn = "c2", nil
	l.mu.Unlock()
	l.r.Trigger(TriggerWebhook)
	st = l.settled(4, 0)
	if st.PausedAt != "" || st.LastResult != ResultOK || st.LastCommit != "c2" {
		t.Errorf("status = %+v, want unpaused at c2", st)
	}
	if diff := cmp.Diff([]string{"start:c1", "schedule:c1", "webhook:c2"}, l.appliedList()); diff != "" {
		t.Errorf("applies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bool{false, true, true, false}, hook.pausedList()); diff != "" {
		t.Errorf("paused reports (-want +got):\n%s", diff)
	}
}

// recLoopHook records the loop's events.
type recLoopHook struct {
	mu     sync.Mutex
	res    []string
	paused []bool
}

func (h *recLoopHook) PassStarted(string, time.Time) {}
func (h *recLoopHook) PassFinished(r PassReport) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.res = append(h.res, r.Result)
}
func (h *recLoopHook) LeaderChecked(bool, error) {}
func (h *recLoopHook) Paused(p bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.paused = append(h.paused, p)
}
func (h *recLoopHook) results() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.res...)
}
func (h *recLoopHook) pausedList() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bool(nil), h.paused...)
}

// TestReconcilerLeaseHeldIsNoFailure: a pass refused by another holder's
// lease retries on the schedule (a crashed leader's lease lapses), without
// backing off: again after LeaseRetry (2 s), doubling, never later than the
// schedule; a pass that gets through resets it.
func TestReconcilerLeaseHeldIsNoFailure(t *testing.T) {
	l := newLoop(t)
	l.leader.Store(true)
	l.loadErr = fmt.Errorf("refusing to apply --auto, nothing was changed: %w", providers.ErrLeaseHeld)
	l.run()
	var waits []time.Duration
	for n := 1; n <= 7; n++ {
		st := l.settled(n, 0)
		if st.Failures != 0 || st.LastResult != ResultFailed {
			t.Fatalf("pass %d: %+v", n, st)
		}
		wait := st.NextPass.Sub(st.LastEnd)
		waits = append(waits, wait)
		if n == 7 {
			l.mu.Lock()
			l.loadErr = nil
			l.mu.Unlock()
		}
		l.clock.Advance(wait)
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Errorf("waits after each refusal (-want +got):\n%s", diff)
	}
	if st := l.settled(8, 0); st.LastResult != ResultOK || st.NextPass.Sub(st.LastEnd) != time.Minute {
		t.Errorf("after a pass that got the lease: %+v, want ok and the schedule's minute", st)
	}
}

// TestReconcilerHungCheckDoesNotDelay: a leadership check that hangs (as
// a manager's call may during an election) does not hold back the next
// one: becoming leader still starts a pass one LeaderEvery later, and the
// hung check's late answer, older than the one recorded, changes nothing.
func TestReconcilerHungCheckDoesNotDelay(t *testing.T) {
	l := newLoop(t)
	var hang atomic.Bool
	release := make(chan struct{})
	var hung atomic.Int32
	inner := l.r.Leader
	l.r.Leader = func(ctx context.Context) (bool, error) {
		if hang.CompareAndSwap(true, false) {
			hung.Add(1)
			select {
			case <-release:
			case <-ctx.Done(): // the test failed early: let Run end
			}
			return false, errors.New("rpc error: the swarm does not have a leader")
		}
		return inner(ctx)
	}
	l.run()
	l.settled(0, 1)
	hang.Store(true)
	l.clock.Advance(time.Second)
	eventually(t, "a check to hang", func() bool { return hung.Load() == 1 })
	// The watch has started the hung check; its next tick must be set
	// before the clock moves, or it would come a second late.
	eventually(t, "the watch's next tick", func() bool { return l.clock.waiting(l.clock.Now().Add(time.Second)) })
	l.leader.Store(true)
	l.clock.Advance(time.Second)
	st := l.settled(1, 1)
	if st.LastTrigger != TriggerLeader || st.LastStart.Sub(l.start) != 2*time.Second {
		t.Errorf("pass on becoming leader: trigger %q at +%s, want %q at +2s (the check after the hung one)", st.LastTrigger, st.LastStart.Sub(l.start), TriggerLeader)
	}
	close(release)
	eventually(t, "the hung check's answer to be dropped", func() bool {
		l.r.mu.Lock()
		defer l.r.mu.Unlock()
		return l.r.staleChecks == 1
	})
	if st := l.r.Status(); !st.Leader || st.LeaderError != "" {
		t.Errorf("after the hung check's late answer: status %+v, want leader and no error", st)
	}
}

// TestReconcilerStopReturns: closing Stop ends Run at once, while its
// context is still live (the daemon cancels that context only after its
// stop grace period): the leadership watch ends with it.
func TestReconcilerStopReturns(t *testing.T) {
	l := newLoop(t)
	stop := make(chan struct{})
	l.r.Stop = stop
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { _ = l.r.Run(ctx); close(done) }()
	l.settled(0, 1)
	close(stop)
	eventually(t, "Run to return after Stop", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}
