package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/plan"
)

// applyView prints apply's progress: one line per step start and finish
// (text), or one JSON event per line (json). It is the apply.Hook.
type applyView struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	enc  *json.Encoder
}

var _ apply.Hook = (*applyView)(nil)

func newApplyView(w io.Writer, format string) (*applyView, error) {
	switch format {
	case "text":
		return &applyView{w: w}, nil
	case "json":
		return &applyView{w: w, json: true, enc: json.NewEncoder(w)}, nil
	}
	return nil, fmt.Errorf("unknown --format %q: use text or json", format)
}

// applyEvent is one line of `apply --format json`.
type applyEvent struct {
	Type      string      `json:"type"` // plan, step_started, step_finished, summary
	Time      *time.Time  `json:"time,omitempty"`
	Step      string      `json:"step,omitempty"`
	Action    plan.Action `json:"action,omitempty"`
	Group     string      `json:"group,omitempty"`
	Target    string      `json:"target,omitempty"`
	Reason    string      `json:"reason,omitempty"`
	Status    string      `json:"status,omitempty"`
	ElapsedMS int64       `json:"elapsed_ms,omitempty"`
	Instances []string    `json:"instances,omitempty"`
	Error     string      `json:"error,omitempty"`
	Plan      *plan.Plan  `json:"plan,omitempty"`
	Done      []string    `json:"done,omitempty"`
	Failed    []string    `json:"failed,omitempty"`
	Skipped   []string    `json:"skipped,omitempty"`
	NotRun    []string    `json:"not_run,omitempty"`
}

func (v *applyView) emit(e applyEvent) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.enc.Encode(e)
}

func (v *applyView) printf(format string, args ...any) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, err := fmt.Fprintf(v.w, format, args...)
	return err
}

func target(s plan.Step) string {
	switch {
	case s.Node != "" && s.Instance != "":
		return s.Instance + "/" + s.Node
	case s.Instance != "":
		return s.Instance
	case s.Node != "":
		return s.Node
	case s.LaunchStep != "":
		return "instances of " + s.LaunchStep
	}
	return ""
}

// plan shows the plan before it is applied, with the plan view's text
// renderer (rendered from the plan JSON, like `swarmsync plan`).
func (v *applyView) plan(p *plan.Plan) error {
	if v.json {
		return v.emit(applyEvent{Type: "plan", Plan: p})
	}
	js, err := plan.MarshalPlan(p)
	if err != nil {
		return fmt.Errorf("failed to encode the plan: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return renderPlanText(v.w, js)
}

// StepStarted prints the start of a step.
func (v *applyView) StepStarted(s plan.Step, at time.Time) {
	if v.json {
		at := at.UTC()
		_ = v.emit(applyEvent{Type: "step_started", Time: &at, Step: s.ID, Action: s.Action, Group: s.Group, Target: target(s), Reason: s.Reason})
		return
	}
	_ = v.printf("%s: %s %s%s...\n", s.ID, s.Action, s.Group, suffix(target(s)))
}

// StepFinished prints how a step ended.
func (v *applyView) StepFinished(s plan.Step, r apply.StepResult) {
	if v.json {
		_ = v.emit(applyEvent{Type: "step_finished", Step: s.ID, Action: s.Action, Status: string(r.Status),
			ElapsedMS: r.Elapsed.Milliseconds(), Instances: r.Instances, Error: r.Error})
		return
	}
	switch r.Status {
	case apply.StatusDone:
		extra := ""
		if len(r.Instances) > 0 {
			extra = " [" + strings.Join(r.Instances, ", ") + "]"
		}
		_ = v.printf("%s: done after %s%s\n", s.ID, r.Elapsed.Round(100*time.Millisecond), extra)
	case apply.StatusSkipped:
		_ = v.printf("%s: %s\n", s.ID, r.Error)
	default:
		_ = v.printf("%s: %s after %s: %s\n", s.ID, r.Status, r.Elapsed.Round(100*time.Millisecond), r.Error)
	}
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

// summary closes the run.
func (v *applyView) summary(r *apply.Result) error {
	done, failed := r.IDs(apply.StatusDone), r.IDs(apply.StatusFailed)
	skipped, left := r.IDs(apply.StatusSkipped), r.IDs(apply.StatusNotRun)
	if v.json {
		return v.emit(applyEvent{Type: "summary", Done: done, Failed: failed, Skipped: skipped, NotRun: left})
	}
	msg := fmt.Sprintf("Apply: %d done, %d failed, %d skipped, %d not run.\n", len(done), len(failed), len(skipped), len(left))
	if len(failed) == 0 && len(skipped) == 0 && len(left) == 0 {
		msg = fmt.Sprintf("Apply complete: %d step(s) done.\n", len(done))
	}
	return v.printf("%s", msg)
}

// serveStatus serves /healthz and /status (the reconcile loop's status as
// JSON) on addr until stop is called.
func serveStatus(ctx context.Context, addr string, r *apply.Reconciler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Status())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("status server stopped", "error", err.Error())
		}
	}()
	log.Info("serving status", "addr", ln.Addr().String())
	return func() { _ = srv.Shutdown(context.WithoutCancel(ctx)) }, nil
}
