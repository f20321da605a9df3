package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// Default waits, used when the plan's update policy leaves them zero.
const (
	DefaultJoinTimeout  = 10 * time.Minute
	DefaultDrainTimeout = 5 * time.Minute
	DefaultPollInterval = time.Second
)

// SwarmDialer opens a Swarm endpoint on a launched manager's engine. apply
// uses it once, after the launch that initialises a new Swarm, to make the
// new first manager its endpoint.
type SwarmDialer interface {
	Dial(ctx context.Context, inst providers.Instance) (providers.Swarm, error)
}

// TaskMover is optionally implemented by a Swarm endpoint. When it is,
// await-drained also waits (within drainTimeout) until the tasks of every
// service that ran on the drained node run again elsewhere, so no instance
// goes before its workload has moved.
type TaskMover interface {
	// TasksMoved reports whether every task of the services that had tasks
	// on nodeID, desired running, is running on another node.
	TasksMoved(ctx context.Context, nodeID string) (bool, error)
}

// Hook receives progress. Calls are serialised; implementations must not
// block for long.
type Hook interface {
	StepStarted(s plan.Step, at time.Time)
	StepFinished(s plan.Step, r StepResult)
}

// WaitHook is a Hook that also learns what a running step waits for (new
// nodes to join, tasks to move, a node to be seen Down), each time that
// changes. Views show it beside the step.
type WaitHook interface {
	Hook
	StepWaiting(s plan.Step, what string)
}

// Deps are what Run acts through.
type Deps struct {
	Cloud providers.Cloud
	// Swarm is the endpoint. It may be nil, or report an inactive engine,
	// only when the plan starts with the launch that initialises the Swarm.
	Swarm  providers.Swarm
	Dialer SwarmDialer
	Clock  Clock
	Hook   Hook
	Logger *slog.Logger
	// PollInterval is how often waits re-observe (default 1s).
	PollInterval time.Duration
	// FindLeader, when set, finds the leader's endpoint after this apply has
	// demoted its own endpoint's node (the planner demotes the leader last,
	// and leadership moves): the apply then goes on through the new leader.
	// Without it, the apply stops there and the new leader finishes the plan
	// on its next pass. Leadership lost any other way always stops the apply.
	FindLeader func(ctx context.Context) (providers.Swarm, error)
	// Lease, when set, is the apply lease this apply must hold: the fence
	// checks it with leadership before every mutating call, and the apply
	// stops at once when it is lost. A lease not held yet (a new Swarm) is
	// taken right after the launch that initialises the Swarm.
	Lease *Lease
	// Stop, when closed, makes the apply start no further step: the steps
	// running finish (ctx still bounds them) and the rest are left not run
	// (a graceful shutdown between steps).
	Stop <-chan struct{}
}

// Status is how a step ended.
type Status string

// Step statuses.
const (
	StatusDone    Status = "done"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped" // depends on a failed step (failureAction continue)
	StatusNotRun  Status = "not-run" // left when the apply stopped
)

// StepResult is the outcome of one step. Error never carries a secret.
type StepResult struct {
	ID      string        `json:"id"`
	Action  plan.Action   `json:"action"`
	Status  Status        `json:"status"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Error   string        `json:"error,omitempty"`
	// Instances are the instances a launch step started.
	Instances []string `json:"instances,omitempty"`
}

// Result lists what happened to every step, in plan order.
type Result struct {
	Steps []StepResult `json:"steps"`
}

// IDs returns the ids of the steps with status st.
func (r *Result) IDs(st Status) []string {
	var out []string
	for _, s := range r.Steps {
		if s.Status == st {
			out = append(out, s.ID)
		}
	}
	return out
}

// NotLeaderError stops an apply whose endpoint is not the Swarm leader.
type NotLeaderError struct {
	// LeaderAddr is the leader's manager address, when known.
	LeaderAddr string
	// Cause is why leadership could not be confirmed, if the check failed.
	Cause error
	// HandedOver is true when this apply demoted its own endpoint's node,
	// so leadership moved on purpose.
	HandedOver bool
}

func (e *NotLeaderError) Error() string {
	if e.HandedOver {
		msg := "stopped: this apply demoted its own endpoint's node, so leadership moved"
		if e.LeaderAddr != "" {
			msg += " to " + e.LeaderAddr
		}
		return msg + "; the new leader finishes the plan (run apply again there, or let its apply --auto do it)"
	}
	msg := "refusing to apply: the Docker endpoint's node is not the Swarm leader"
	if e.Cause != nil {
		msg = "refusing to apply: could not confirm that the Docker endpoint's node is the Swarm leader (" + e.Cause.Error() + ")"
	}
	if e.LeaderAddr != "" {
		return msg + "; the leader is at " + e.LeaderAddr + ": run apply there, or point DOCKER_HOST at it"
	}
	return msg + "; run apply on the leader, or point DOCKER_HOST at it"
}

func (e *NotLeaderError) Unwrap() error { return e.Cause }

// StepError reports the step that stopped or failed an apply.
type StepError struct {
	Step   string
	Action plan.Action
	Err    error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %s (%s) failed: %v", e.Step, e.Action, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// IdempotencyToken is the launch token for a step of a plan computed from the
// observation with this fingerprint: the same plan re-run after a crash
// launches nothing twice. It is at most 64 ASCII characters.
func IdempotencyToken(fingerprint, stepID string) string {
	sum := sha256.Sum256([]byte(fingerprint + "\x00" + stepID))
	return "swarmsync-" + hex.EncodeToString(sum[:])[:48]
}

// Run executes p. It returns the outcome of every step and, when any step
// failed or the apply stopped, an error (a *NotLeaderError when leadership
// was lost or never held).
func Run(ctx context.Context, p *plan.Plan, deps Deps) (*Result, error) {
	if p == nil {
		return nil, errors.New("failed to apply: no plan")
	}
	if deps.Cloud == nil {
		return nil, errors.New("failed to apply: no cloud provider")
	}
	if deps.Clock == nil {
		deps.Clock = SystemClock{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.PollInterval <= 0 {
		deps.PollInterval = DefaultPollInterval
	}
	order, err := checkGraph(p.Steps)
	if err != nil {
		return nil, err
	}
	e := &executor{
		plan:     p,
		deps:     deps,
		swarm:    deps.Swarm,
		launched: map[string][]providers.Instance{},
		secrets:  map[string]bool{},
	}
	return e.run(ctx, order)
}

// stopped reports whether stop is closed.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// checkGraph verifies ids are unique, dependencies exist and there is no
// cycle; it returns the steps' indexes in plan order.
func checkGraph(steps []plan.Step) ([]int, error) {
	idx := map[string]int{}
	for i, s := range steps {
		if s.ID == "" {
			return nil, fmt.Errorf("failed to apply: step %d has no id", i)
		}
		if _, dup := idx[s.ID]; dup {
			return nil, fmt.Errorf("failed to apply: step id %q appears twice", s.ID)
		}
		idx[s.ID] = i
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(steps))
	var visit func(i int) error
	visit = func(i int) error {
		switch color[i] {
		case grey:
			return fmt.Errorf("failed to apply: steps depend on each other in a cycle through %q", steps[i].ID)
		case black:
			return nil
		}
		color[i] = grey
		for _, d := range steps[i].DependsOn {
			j, ok := idx[d]
			if !ok {
				return fmt.Errorf("failed to apply: step %q depends on unknown step %q", steps[i].ID, d)
			}
			if err := visit(j); err != nil {
				return err
			}
		}
		color[i] = black
		return nil
	}
	order := make([]int, len(steps))
	for i := range steps {
		if err := visit(i); err != nil {
			return nil, err
		}
		order[i] = i
	}
	return order, nil
}

type executor struct {
	plan *plan.Plan
	deps Deps

	mu       sync.Mutex
	swarm    providers.Swarm
	launched map[string][]providers.Instance // launch step id -> instances
	secrets  map[string]bool
	// handedOver is set once a demote step demoted the endpoint's own node.
	handedOver bool
	// waits is what each running step last said it waits for.
	waits map[string]string

	hookMu     sync.Mutex
	handoverMu sync.Mutex

	obsMu sync.Mutex
	obs   sharedObservation
}

type outcome struct {
	idx       int // -1 for a batch gate
	gate      gateKey
	err       error
	elapsed   time.Duration
	instances []string
}

func (e *executor) run(ctx context.Context, order []int) (*Result, error) {
	steps := e.plan.Steps
	res := &Result{Steps: make([]StepResult, len(steps))}
	status := make([]Status, len(steps)) // "" = pending, "running"
	for i, s := range steps {
		res.Steps[i] = StepResult{ID: s.ID, Action: s.Action}
	}
	idx := map[string]int{}
	for i, s := range steps {
		idx[s.ID] = i
	}
	par := e.plan.Desired.Update.Parallelism
	if par < 1 {
		par = 1
	}
	continueOnFailure := e.plan.Desired.Update.FailureAction == "continue"

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan outcome)
	running := 0 // steps and gates in flight
	busy := 0    // those that hold one of the par slots (see holdsSlot)
	stopping := false
	var firstErr error

	// Rolling-replacement batches, numbered per group: the first step of
	// a group's batch b > 1 starts only after every step of the group's
	// earlier batches is done and the gate (update.delay, then
	// update.monitor over the group's new nodes) has passed. Groups do not
	// wait for each other.
	gate := map[gateKey]string{} // "" closed, "waiting", "open"
	batchesBeforeDone := func(k gateKey) bool {
		for i, s := range steps {
			if s.Group == k.group && s.Batch > 0 && s.Batch < k.batch && status[i] != StatusDone {
				return false
			}
		}
		return true
	}
	depsDone := func(i int) bool {
		for _, d := range steps[i].DependsOn {
			if status[idx[d]] != StatusDone {
				return false
			}
		}
		return true
	}
	ready := func(i int) bool {
		if !depsDone(i) {
			return false
		}
		b := steps[i].Batch
		return b <= 1 || gate[gateKey{steps[i].Group, b}] == "open"
	}
	// skipDependents marks every pending step that (transitively) depends on
	// a failed or skipped step as skipped.
	skipDependents := func() {
		for changed := true; changed; {
			changed = false
			for _, i := range order {
				if status[i] != "" {
					continue
				}
				for _, d := range steps[i].DependsOn {
					if st := status[idx[d]]; st == StatusFailed || st == StatusSkipped {
						status[i] = StatusSkipped
						res.Steps[i].Status = StatusSkipped
						res.Steps[i].Error = "skipped: depends on " + d + ", which did not complete"
						e.finished(steps[i], res.Steps[i])
						changed = true
						break
					}
				}
			}
		}
	}

	for {
		if ctx.Err() != nil && !stopping {
			stopping = true
			if firstErr == nil {
				firstErr = fmt.Errorf("apply interrupted: %w", ctx.Err())
			}
		}
		if !stopping && stopped(e.deps.Stop) {
			stopping = true
			if firstErr == nil {
				firstErr = errors.New("apply stopped between steps: shutting down; the next pass finishes the plan")
			}
		}
		if !stopping {
			for _, i := range order {
				if busy >= par {
					break
				}
				if status[i] != "" {
					continue
				}
				if k := (gateKey{steps[i].Group, steps[i].Batch}); k.batch > 1 && gate[k] == "" && depsDone(i) && batchesBeforeDone(k) {
					gate[k] = "waiting"
					running++
					busy++
					go func() {
						err := recovered(fmt.Sprintf("the gate of batch %d of %s", k.batch, k.group), func() error { return e.batchGate(runCtx, k) })
						done <- outcome{idx: -1, gate: k, err: err}
					}()
					continue
				}
				if !ready(i) {
					continue
				}
				status[i] = "running"
				running++
				if holdsSlot(steps[i]) {
					busy++
				}
				e.started(steps[i])
				go func(i int) {
					start := e.deps.Clock.Now()
					insts, err := e.recoveredStep(runCtx, steps[i])
					done <- outcome{idx: i, err: err, elapsed: e.deps.Clock.Now().Sub(start), instances: insts}
				}(i)
			}
		}
		if running == 0 {
			break
		}
		o := <-done
		running--
		if o.idx < 0 || holdsSlot(steps[o.idx]) {
			busy--
		}
		if o.idx < 0 {
			if o.err == nil {
				gate[o.gate] = "open"
				continue
			}
			stopping = true
			if firstErr == nil {
				firstErr = e.redact(o.err)
			}
			continue
		}
		r := &res.Steps[o.idx]
		r.Elapsed = o.elapsed
		r.Instances = o.instances
		if o.err == nil {
			status[o.idx] = StatusDone
			r.Status = StatusDone
			e.finished(steps[o.idx], *r)
			continue
		}
		err := e.redact(o.err)
		status[o.idx] = StatusFailed
		r.Status = StatusFailed
		r.Error = err.Error()
		e.finished(steps[o.idx], *r)
		e.deps.Logger.Warn("step failed", "step", steps[o.idx].ID, "action", string(steps[o.idx].Action), "error", err.Error())
		var nl *NotLeaderError
		switch {
		case errors.Is(err, providers.ErrLeaseLost):
			// Another applier may act now: stop like a lost leadership.
			stopping = true
			cancel()
			if firstErr == nil || !errors.Is(firstErr, providers.ErrLeaseLost) {
				firstErr = err
			}
		case errors.As(err, &nl):
			// Leadership is gone: nothing more may change, not even the
			// steps in flight.
			stopping = true
			cancel()
			if firstErr == nil || !errors.As(firstErr, new(*NotLeaderError)) {
				firstErr = err
			}
		case continueOnFailure && ctx.Err() == nil:
			skipDependents()
			if firstErr == nil {
				firstErr = &StepError{Step: steps[o.idx].ID, Action: steps[o.idx].Action, Err: err}
			}
		default:
			stopping = true
			if firstErr == nil {
				firstErr = &StepError{Step: steps[o.idx].ID, Action: steps[o.idx].Action, Err: err}
			}
		}
	}
	for i := range steps {
		if status[i] == "" {
			res.Steps[i].Status = StatusNotRun
		}
	}
	if firstErr == nil {
		return res, nil
	}
	var nl *NotLeaderError
	if errors.As(firstErr, &nl) || errors.Is(firstErr, providers.ErrLeaseLost) {
		return res, firstErr
	}
	failed, skipped, left := res.IDs(StatusFailed), res.IDs(StatusSkipped), res.IDs(StatusNotRun)
	summary := fmt.Sprintf("%d failed", len(failed))
	if len(skipped) > 0 {
		summary += fmt.Sprintf(", %d skipped", len(skipped))
	}
	if len(left) > 0 {
		summary += fmt.Sprintf(", %d not run (run plan/apply again to finish)", len(left))
	}
	return res, fmt.Errorf("apply incomplete (%s): %w", summary, firstErr)
}

// gateKey names a group's rolling-replacement batch.
type gateKey struct {
	group string
	batch int
}

// holdsSlot reports whether a step counts against update.parallelism. A
// remove-node only forgets a node whose instance is terminated (it waits
// for the Swarm to mark it Down, ~3 heartbeats): the next leaving node need
// not wait for that bookkeeping. Order still comes from depends_on only.
func holdsSlot(s plan.Step) bool { return s.Action != plan.ActionRemoveNode }

// batchGate waits update.delay, then watches the nodes of every instance
// the group's launches started so far for update.monitor: any that is not
// Ready stops the group's rollout before batch k.batch.
func (e *executor) batchGate(ctx context.Context, k gateKey) error {
	u := e.plan.Desired.Update
	b := k.batch
	e.deps.Logger.Info("waiting between batches", "group", k.group, "batch", b, "delay", u.Delay.String(), "monitor", u.Monitor.String())
	if u.Delay.Duration > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.deps.Clock.After(u.Delay.Duration):
		}
	}
	if u.Monitor.Duration <= 0 {
		return nil
	}
	deadline := e.deps.Clock.Now().Add(u.Monitor.Duration)
	for e.deps.Clock.Now().Before(deadline) {
		if sw := e.currentSwarm(); sw != nil {
			if st, err := e.observeShared(ctx, sw); err == nil {
				byInst := nodesByInstance(st)
				e.mu.Lock()
				var bad []string
				for _, insts := range e.launched {
					for _, in := range insts {
						if in.Group != k.group {
							continue
						}
						if n, ok := byInst[in.ID]; ok && n.State != providers.NodeReady {
							bad = append(bad, in.ID+" ("+string(n.State)+")")
						}
					}
				}
				e.mu.Unlock()
				if len(bad) > 0 {
					sort.Strings(bad)
					return fmt.Errorf("rollout of %s stopped before batch %d: new node(s) of %s not Ready within update.monitor %s", k.group, b, strings.Join(bad, ", "), u.Monitor.Duration)
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.deps.Clock.After(e.deps.PollInterval):
		}
	}
	return nil
}

// waiting tells a WaitHook what step s waits for, when that changed.
func (e *executor) waiting(s plan.Step, what string) {
	h, ok := e.deps.Hook.(WaitHook)
	if !ok {
		return
	}
	e.mu.Lock()
	if e.waits == nil {
		e.waits = map[string]string{}
	}
	same := e.waits[s.ID] == what
	e.waits[s.ID] = what
	e.mu.Unlock()
	if same {
		return
	}
	e.hookMu.Lock()
	defer e.hookMu.Unlock()
	h.StepWaiting(s, what)
}

func (e *executor) started(s plan.Step) {
	e.deps.Logger.Info("step started", "step", s.ID, "action", string(s.Action), "reason", s.Reason)
	if e.deps.Hook == nil {
		return
	}
	e.hookMu.Lock()
	defer e.hookMu.Unlock()
	e.deps.Hook.StepStarted(s, e.deps.Clock.Now())
}

func (e *executor) finished(s plan.Step, r StepResult) {
	if e.deps.Hook == nil {
		return
	}
	e.hookMu.Lock()
	defer e.hookMu.Unlock()
	e.deps.Hook.StepFinished(s, r)
}

// addSecret remembers a value that must never leave the process in text.
func (e *executor) addSecret(s string) {
	if s == "" {
		return
	}
	e.mu.Lock()
	e.secrets[s] = true
	e.mu.Unlock()
}

// redact returns err with every known secret replaced; it keeps the chain
// for errors.Is/As.
func (e *executor) redact(err error) error {
	if err == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	msg := err.Error()
	changed := false
	for s := range e.secrets {
		if strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &redactedError{msg: msg, cause: err}
}

type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }

// Unwrap keeps errors.Is/As working; the cause's text is never printed by
// apply or its views.
func (e *redactedError) Unwrap() error { return e.cause }

func (e *executor) currentSwarm() providers.Swarm {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.swarm
}

func (e *executor) setLaunched(stepID string, insts []providers.Instance) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.launched[stepID] = insts
}

func (e *executor) launchedBy(stepID string) []providers.Instance {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.launched[stepID]
}

// recoveredStep is step with a panic turned into the step's error.
func (e *executor) recoveredStep(ctx context.Context, s plan.Step) (insts []string, err error) {
	err = recovered("step "+s.ID, func() error {
		var err error
		insts, err = e.step(ctx, s)
		return err
	})
	return insts, err
}

// recovered runs f, turning a panic into an error that names what. Every
// goroutine apply starts runs its calls into providers through it: a panic
// on a goroutine ends the process with the runtime's exit code 2, which
// means "changes".
func recovered(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in %s (a bug in swarmsync, please report it): %v", what, r)
		}
	}()
	return f()
}
