package apply

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// Schedule says when the next pass is due (robfig/cron's Schedule).
type Schedule interface {
	Next(time.Time) time.Time
}

// Triggers: why a pass started.
const (
	TriggerStart    = "start"    // the loop started
	TriggerSchedule = "schedule" // schedule.reconcile, or a retry after a failure
	TriggerLeader   = "leader"   // this endpoint became the leader
	TriggerWebhook  = "webhook"  // a verified webhook delivery
)

// Pass results, as reported in the status and the metrics.
const (
	ResultOK        = "ok"         // applied (or nothing to do)
	ResultFailed    = "failed"     // loading, observing, planning or a step failed
	ResultPaused    = "paused"     // not applied: paused at this commit (failureAction pause)
	ResultNotLeader = "not-leader" // skipped: this endpoint is not the leader
	ResultUnknown   = "leadership-unknown"
)

// Loaded is one pass's spec, freshly pulled: what the pass applies.
type Loaded struct {
	// Commit is the revision the spec came from.
	Commit string
	// Schedule is the spec's schedule.reconcile: it replaces the loop's
	// schedule from this pass on.
	Schedule Schedule
	// PauseOnFailure is update.failureAction == pause: a failed step of a
	// rolling replacement pauses the loop until the commit changes (other
	// failures back off and retry).
	PauseOnFailure bool
	// Apply observes, plans and applies the spec through the leader.
	Apply func(ctx context.Context) (Applied, error)
	// Close releases what loading opened for the pass (clients); may be nil.
	Close func()
}

// Applied is what Loaded.Apply did.
type Applied struct {
	// Plan is the plan applied (nil when there was none to apply).
	Plan *plan.Plan
	// Result is the apply's outcome (nil when no plan was applied).
	Result *Result
	// Steps is how many steps the plan had.
	Steps int
}

// LoadFunc pulls the spec for a pass. It runs only on the leader.
type LoadFunc func(ctx context.Context) (Loaded, error)

// LoopHook receives the loop's events (metrics). Calls come from the loop's
// goroutines; implementations must be safe for concurrent use.
type LoopHook interface {
	PassStarted(trigger string, at time.Time)
	PassFinished(PassReport)
	LeaderChecked(leader bool, err error)
	Paused(paused bool)
}

// PassReport is one finished pass.
type PassReport struct {
	Trigger    string
	Result     string
	Commit     string
	Start, End time.Time
	Applied    Applied
	Err        error
}

// Reconciler is the loop behind `apply --auto`. Every manager runs one; it
// watches leadership continuously, and only the one whose endpoint is the
// Swarm leader loads the spec and applies it. A pass starts on the spec's
// schedule, on Trigger (a verified webhook), and at once when this endpoint
// becomes leader. Failed passes back off; a failed step of a rolling
// replacement under failureAction pause keeps the loop paused until the
// spec's commit changes.
type Reconciler struct {
	// Schedule is used until the first pass loads the spec's own.
	Schedule Schedule
	Clock    Clock
	// Leader reports whether this process's endpoint is the leader now. An
	// error means "unknown": reported, never taken for "follower" silently.
	Leader func(ctx context.Context) (bool, error)
	// LeaderEvery is how often leadership is checked (default 1s).
	LeaderEvery time.Duration
	Load        LoadFunc
	// BackoffBase and BackoffMax bound the retry delay after consecutive
	// failures: base·2^(n-1), at most max (defaults 10s and 10m); a
	// scheduled pass sooner than that waits for it.
	BackoffBase, BackoffMax time.Duration
	// LeaseRetry is how soon a pass refused by another holder's lease is
	// tried again (default 2s), doubling while it stays refused, never
	// later than the schedule: a new leader's first pass may find the dead
	// leader's lease before the Swarm shows its node gone (then the lease
	// is taken over), and a live holder (a CI apply) finishes in minutes.
	LeaseRetry time.Duration
	Logger     *slog.Logger
	Hook       LoopHook
	// Stop, when closed, ends the loop between passes (Run's ctx bounds
	// the passes themselves).
	Stop <-chan struct{}

	once    sync.Once
	trigger chan string
	leadUp  chan struct{}

	mu     sync.Mutex
	status LoopStatus
	wasLed bool
	// answered is whether a leadership check has answered yet.
	answered bool
	// checkSeq numbers leadership checks as they start; recordedSeq is
	// the newest one whose answer is recorded.
	checkSeq, recordedSeq uint64
	// leaseHeld counts consecutive passes refused by another holder's
	// lease.
	leaseHeld int
	// staleChecks counts answers dropped for being older than the one
	// recorded.
	staleChecks int
}

// LoopStatus is what the status endpoint reports. LastError and
// LeaderError never carry a secret (they come from Run and the providers,
// which redact).
type LoopStatus struct {
	Passes    int       `json:"passes"`
	Leader    bool      `json:"leader"`
	LastStart time.Time `json:"last_start,omitzero"`
	LastEnd   time.Time `json:"last_end,omitzero"`
	LastSteps int       `json:"last_steps"`
	LastError string    `json:"last_error,omitempty"`
	// NextPass is when the next scheduled pass is due; zero while a pass
	// runs (or is being skipped).
	NextPass time.Time `json:"next_pass,omitzero"`
	// Skipped counts passes skipped because this endpoint was not leader
	// (or leadership was unknown).
	Skipped int `json:"skipped"`
	// LeaderError is why the last leadership check failed ("" when it
	// answered).
	LeaderError string `json:"leader_error,omitempty"`
	// LastTrigger and LastResult describe the last pass (see Trigger* and
	// Result*); LastCommit is the spec revision it read.
	LastTrigger string `json:"last_trigger,omitempty"`
	LastResult  string `json:"last_result,omitempty"`
	LastCommit  string `json:"last_commit,omitempty"`
	// LastSuccess is when a pass last ended ok.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Failures counts consecutive failed passes (the backoff's n).
	Failures int `json:"consecutive_failures"`
	// PausedAt is the commit the loop is paused at ("" when not paused),
	// and PauseError the failure that paused it.
	PausedAt   string `json:"paused_at,omitempty"`
	PauseError string `json:"pause_error,omitempty"`
}

// Status returns a copy of the loop's status.
func (r *Reconciler) Status() LoopStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		r.trigger = make(chan string, 1)
		r.leadUp = make(chan struct{}, 1)
	})
}

// Trigger asks for a pass as soon as possible. Triggers that arrive while
// one is pending or a pass runs are coalesced into one more pass.
func (r *Reconciler) Trigger(reason string) {
	r.init()
	select {
	case r.trigger <- reason:
	default:
	}
}

func (r *Reconciler) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// Run does a full pass at once (to catch what happened while no leader
// acted), then one on every trigger until ctx ends. It returns when ctx
// ends; a pass in progress is given stop semantics by the Apply it runs.
func (r *Reconciler) Run(ctx context.Context) error {
	r.init()
	if r.LeaderEvery <= 0 {
		r.LeaderEvery = time.Second
	}
	if r.BackoffBase <= 0 {
		r.BackoffBase = 10 * time.Second
	}
	if r.BackoffMax <= 0 {
		r.BackoffMax = 10 * time.Minute
	}
	if r.LeaseRetry <= 0 {
		r.LeaseRetry = 2 * time.Second
	}
	// On return (ctx ended or Stop closed) the leadership watch ends
	// first, then is waited for: Stop alone does not end ctx.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.watchLeader(watchCtx) }()
	defer wg.Wait()
	defer stopWatch()

	trigger := TriggerStart
	for ctx.Err() == nil && !stopped(r.Stop) {
		r.pass(ctx, trigger)
		now := r.Clock.Now()
		next := r.next(now)
		r.mu.Lock()
		r.status.NextPass = next
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-r.Stop:
			return nil
		case trigger = <-r.trigger:
		case <-r.leadUp:
			trigger = TriggerLeader
		case <-r.Clock.After(next.Sub(now)):
			trigger = TriggerSchedule
		}
	}
	return nil
}

// next is when the next scheduled pass is due: the schedule's next time,
// or later while failures back off.
func (r *Reconciler) next(now time.Time) time.Time {
	r.mu.Lock()
	n, held := r.status.Failures, r.leaseHeld
	r.mu.Unlock()
	next := r.Schedule.Next(now)
	if held > 0 {
		if retry := now.Add(doubling(r.LeaseRetry, held, time.Hour)); retry.Before(next) {
			next = retry
		}
	}
	if n > 0 {
		if back := now.Add(doubling(r.BackoffBase, n, r.BackoffMax)); back.After(next) {
			next = back
		}
	}
	return next
}

// doubling is base·2^(n-1), at most ceil.
func doubling(base time.Duration, n int, ceil time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < ceil; i++ {
		d *= 2
	}
	return min(d, ceil)
}

// watchLeader starts a leadership check every LeaderEvery and signals the
// loop when this endpoint becomes leader. A check that hangs (during an
// election a manager's call may wait on the lost leader's connection
// until its timeout) does not delay the next one: up to maxChecks run at
// once, and only an answer newer than the last one recorded counts.
func (r *Reconciler) watchLeader(ctx context.Context) {
	const maxChecks = 3
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxChecks)
	for {
		select {
		case sem <- struct{}{}:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r.checkLeader(ctx)
			}()
		default: // maxChecks still waiting: skip this tick
		}
		select {
		case <-ctx.Done():
			return
		case <-r.Clock.After(r.LeaderEvery):
		}
	}
}

// checkLeader asks once, records the answer unless a newer one was
// recorded meanwhile, and signals a rise.
func (r *Reconciler) checkLeader(ctx context.Context) (bool, error) {
	r.mu.Lock()
	r.checkSeq++
	seq := r.checkSeq
	r.mu.Unlock()
	var leader bool
	err := recovered("the leadership check", func() (err error) {
		leader, err = r.Leader(ctx)
		return err
	})
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		leader = false
	}
	r.mu.Lock()
	if seq < r.recordedSeq {
		// A newer check already answered: this one is stale.
		r.staleChecks++
		r.mu.Unlock()
		return leader, err
	}
	r.recordedSeq = seq
	rose := leader && !r.wasLed
	// The first answer is logged too, so a follower's log says it follows.
	changed := leader != r.wasLed || (!r.answered && err == nil)
	if err == nil {
		r.answered = true
	}
	r.wasLed = leader
	r.status.Leader = leader
	prevErr := r.status.LeaderError
	r.status.LeaderError = ""
	if err != nil {
		r.status.LeaderError = err.Error()
	}
	r.mu.Unlock()
	if r.Hook != nil {
		r.Hook.LeaderChecked(leader, err)
	}
	switch {
	case err != nil && prevErr == "":
		r.log().Warn("leadership check failed: not acting until it answers", "error", err.Error())
	case err == nil && prevErr != "":
		r.log().Info("leadership check answers again", "leader", leader)
	}
	if changed && err == nil {
		r.log().Info("leadership changed", "leader", leader)
	}
	if rose {
		select {
		case r.leadUp <- struct{}{}:
		default:
		}
	}
	return leader, err
}

// pass runs one pass if this endpoint is the leader now.
func (r *Reconciler) pass(ctx context.Context, trigger string) {
	log := r.log()
	leader, err := r.checkLeader(ctx)
	if ctx.Err() != nil {
		return
	}
	if !leader {
		res := ResultNotLeader
		if err != nil {
			res = ResultUnknown
		}
		r.mu.Lock()
		r.status.Skipped++
		r.status.NextPass = time.Time{} // until Run sets the next one
		r.mu.Unlock()
		if r.Hook != nil {
			r.Hook.PassFinished(PassReport{Trigger: trigger, Result: res})
		}
		log.Debug("not acting", "trigger", trigger, "result", res)
		return
	}
	// Drop a leadership rise seen meanwhile: this pass covers it.
	select {
	case <-r.leadUp:
	default:
	}
	start := r.Clock.Now()
	r.mu.Lock()
	r.status.LastStart = start
	r.status.LastTrigger = trigger
	r.status.NextPass = time.Time{} // a pass runs: Run sets the next one after it
	r.mu.Unlock()
	if r.Hook != nil {
		r.Hook.PassStarted(trigger, start)
	}
	log.Info("pass started", "trigger", trigger)
	rep := r.run(ctx, trigger, start)
	rep.End = r.Clock.Now()

	r.mu.Lock()
	r.status.Passes++
	r.status.LastEnd = rep.End
	r.status.LastSteps = rep.Applied.Steps
	r.status.LastResult = rep.Result
	r.status.LastError = ""
	if rep.Commit != "" {
		r.status.LastCommit = rep.Commit
	}
	held := r.leaseHeld
	r.leaseHeld = 0
	switch rep.Result {
	case ResultFailed:
		// Another holder's lease is no failure of ours: it is tried again
		// soon (LeaseRetry), not backed off from.
		if errors.Is(rep.Err, providers.ErrLeaseHeld) {
			r.leaseHeld = held + 1
		} else {
			r.status.Failures++
		}
		if rep.Err != nil {
			r.status.LastError = rep.Err.Error()
		}
	case ResultOK:
		r.status.Failures = 0
		r.status.LastSuccess = rep.End
	}
	paused := r.status.PausedAt != ""
	failures := r.status.Failures
	r.mu.Unlock()
	if r.Hook != nil {
		r.Hook.PassFinished(rep)
		r.Hook.Paused(paused)
	}
	switch rep.Result {
	case ResultFailed:
		log.Warn("pass failed", "trigger", trigger, "commit", rep.Commit, "steps", rep.Applied.Steps, "consecutive_failures", failures, "paused", paused, "error", errString(rep.Err))
	case ResultPaused:
		log.Info("pass paused: a step failed at this commit (update.failureAction pause); waiting for a new commit", "commit", rep.Commit)
	default:
		log.Info("reconcile pass done", "steps", rep.Applied.Steps, "trigger", trigger, "commit", rep.Commit, "elapsed", rep.End.Sub(start).String())
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// run loads and applies; it sets and clears the pause.
func (r *Reconciler) run(ctx context.Context, trigger string, start time.Time) PassReport {
	rep := PassReport{Trigger: trigger, Start: start}
	ld, err := r.Load(ctx)
	if ld.Close != nil {
		defer ld.Close()
	}
	if err != nil {
		rep.Result, rep.Err = ResultFailed, err
		return rep
	}
	rep.Commit = ld.Commit
	if ld.Schedule != nil {
		r.Schedule = ld.Schedule
	}
	r.mu.Lock()
	pausedAt := r.status.PausedAt
	if pausedAt != "" && pausedAt != ld.Commit {
		r.status.PausedAt, r.status.PauseError = "", "" // a new commit lifts the pause
		pausedAt = ""
	}
	r.mu.Unlock()
	if pausedAt != "" {
		rep.Result = ResultPaused
		return rep
	}
	rep.Applied, err = ld.Apply(ctx)
	if err == nil {
		rep.Result = ResultOK
		return rep
	}
	rep.Result, rep.Err = ResultFailed, err
	if ld.PauseOnFailure && replacementFailed(rep.Applied) {
		r.mu.Lock()
		r.status.PausedAt, r.status.PauseError = ld.Commit, err.Error()
		r.mu.Unlock()
	}
	return rep
}

// replacementFailed reports whether a failed step belongs to a rolling
// replacement (a batch of the update policy).
func replacementFailed(a Applied) bool {
	if a.Plan == nil || a.Result == nil {
		return false
	}
	batch := map[string]bool{}
	for _, s := range a.Plan.Steps {
		batch[s.ID] = s.Batch > 0
	}
	for _, id := range a.Result.IDs(StatusFailed) {
		if batch[id] {
			return true
		}
	}
	return false
}
