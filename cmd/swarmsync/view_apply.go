package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/plan"
)

// applyView prints apply's progress: one line per step start and finish
// (text), or one JSON event per line (json). It is the apply.Hook.
//
// Text on a terminal is live: below those lines, the steps running now are
// redrawn in place with their elapsed time, on every tick of an injected
// ticker (once a second). Each output is one Write: the region erased, the
// new lines, the region drawn again.
type applyView struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	enc  *json.Encoder
	live *liveRegion // nil unless text on a terminal
}

var _ apply.WaitHook = (*applyView)(nil)

func newApplyView(w io.Writer, format string) (*applyView, error) {
	switch format {
	case "text":
		return &applyView{w: w}, nil
	case "json":
		return &applyView{w: w, json: true, enc: json.NewEncoder(exact(w))}, nil
	}
	return nil, fmt.Errorf("unknown --format %q: use text or json", format)
}

// applyViewFor is newApplyView, live when the format is text and w is a
// terminal (redrawn once a second).
func applyViewFor(w io.Writer, format string) (*applyView, error) {
	v, err := newApplyView(w, format)
	if err != nil || v.json {
		return v, err
	}
	if f, ok := terminalFile(w); ok && isTerminal(f) {
		v.live = newLiveRegion(func() int { return terminalWidth(f) }, everySecond)
	}
	return v, nil
}

// everySecond is the live view's ticker.
func everySecond() (<-chan time.Time, func()) {
	tk := time.NewTicker(time.Second)
	return tk.C, tk.Stop
}

// terminalWidth is f's width in columns (80 when unknown).
func terminalWidth(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}

// liveRegion is the bottom of a live view: one line per running step. Its
// fields are guarded by the view's mutex.
type liveRegion struct {
	width  func() int
	ticker func() (<-chan time.Time, func())
	// running are the steps running now, in start order.
	running []runningStep
	// now is the latest time seen (ticks and step starts): elapsed times
	// are measured to it, so the view reads no clock.
	now time.Time
	// drawn is how many lines of the region are on the screen.
	drawn int
	// stop ends the ticking goroutine; done is closed when it has ended.
	stop, done chan struct{}
}

type runningStep struct {
	id      string
	line    string // "<id>: <action> <group> <target>"
	at      time.Time
	waiting string // what the step waits for now, if it said
}

func newLiveRegion(width func() int, ticker func() (<-chan time.Time, func())) *liveRegion {
	return &liveRegion{width: width, ticker: ticker}
}

// erase moves the cursor to the region's first line and clears from there
// to the end of the screen.
func (l *liveRegion) erase(b *strings.Builder) {
	if l.drawn > 0 {
		fmt.Fprintf(b, "\r\x1b[%dA\x1b[J", l.drawn)
		l.drawn = 0
	}
}

// draw writes the region: each running step with its elapsed time and what
// it waits for, wrapped at word boundaries to the terminal's width (one
// column spare, so the terminal itself never wraps a line and the region's
// height is known).
func (l *liveRegion) draw(b *strings.Builder) {
	width := l.width()
	l.drawn = 0
	for _, r := range l.running {
		el := max(l.now.Sub(r.at), 0).Truncate(time.Second)
		text := escapeField(r.line)
		if r.waiting != "" {
			text += " - waiting for " + escapeField(r.waiting)
		}
		for _, line := range wrapWords(fmt.Sprintf("  [%5s] %s", el, text), width-1, strings.Repeat(" ", 10)) {
			b.WriteString(line + "\n")
			l.drawn++
		}
	}
}

// wrapWords breaks s into lines of at most width runes, at spaces where it
// can (a longer word is cut); lines after the first start with indent.
func wrapWords(s string, width int, indent string) []string {
	if width <= len(indent)+1 {
		return []string{s}
	}
	var lines []string
	line := []rune{}
	for i, w := range strings.Split(s, " ") {
		word := []rune(w)
		switch {
		case i == 0:
			line = word
			continue
		case len(line)+1+len(word) <= width:
			line = append(append(line, ' '), word...)
			continue
		}
		lines = append(lines, string(line))
		line = append([]rune(indent), word...)
		for len(line) > width {
			lines = append(lines, string(line[:width]))
			line = append([]rune(indent), line[width:]...)
		}
	}
	for len(line) > width {
		lines = append(lines, string(line[:width]))
		line = append([]rune(indent), line[width:]...)
	}
	return append(lines, string(line))
}

// write writes, under the lock, the region erased, what text adds, and the
// region drawn again, in one Write. The view's own cursor controls are
// written exact; everything else under the printing rule.
func (v *applyView) write(text func(b *strings.Builder)) error {
	var b, t strings.Builder
	if v.live != nil {
		v.live.erase(&b)
	}
	text(&t)
	b.WriteString(escape(t.String(), false))
	if v.live != nil {
		v.live.draw(&b)
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := io.WriteString(exact(v.w), b.String())
	return err
}

// logWriter is where log lines go while the view runs: on a live view,
// through write (the region erased, the line, the region drawn again).
func (v *applyView) logWriter(w io.Writer) io.Writer {
	if v.live == nil {
		return w
	}
	return logThroughView{v}
}

type logThroughView struct{ v *applyView }

func (l logThroughView) Write(p []byte) (int, error) {
	l.v.mu.Lock()
	defer l.v.mu.Unlock()
	if err := l.v.write(func(b *strings.Builder) { b.Write(p) }); err != nil {
		return 0, err
	}
	return len(p), nil
}

// startTicking starts the goroutine that redraws the region on every tick,
// once. Called with the lock held.
func (v *applyView) startTicking() {
	l := v.live
	if l.stop != nil {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	l.stop, l.done = stop, done
	ticks, stopTicker := l.ticker()
	go func() {
		defer close(done)
		defer stopTicker()
		for {
			select {
			case <-stop:
				return
			case t := <-ticks:
				v.tick(t)
			}
		}
	}()
}

// tick redraws the region with the elapsed times at t.
func (v *applyView) tick(t time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t.After(v.live.now) {
		v.live.now = t
	}
	if len(v.live.running) == 0 {
		return
	}
	_ = v.write(func(*strings.Builder) {})
}

// close stops the ticking and erases the region. Safe to call more than
// once, and on a view that is not live.
func (v *applyView) close() {
	if v.live == nil {
		return
	}
	v.mu.Lock()
	l := v.live
	stop, done := l.stop, l.done
	l.stop = nil
	v.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done // the goroutine may be waiting for the lock: not held here
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	l.running = nil
	_ = v.write(func(*strings.Builder) {})
}

// applyEvent is one line of `apply --format json`.
type applyEvent struct {
	Type      string      `json:"type"` // plan, step_started, step_waiting, step_finished, summary
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
	Waiting   string      `json:"waiting,omitempty"` // step_waiting: what the step waits for
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
	return v.write(func(b *strings.Builder) { fmt.Fprintf(b, format, args...) })
}

func target(s plan.Step) string {
	switch {
	case s.Action == plan.ActionLaunch && s.Count > 0, s.Action == plan.ActionRotateJoinToken:
		return stepTarget(s)
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
	line := escapeField(stepLine(s))
	if v.live != nil {
		v.mu.Lock()
		defer v.mu.Unlock()
		if at.After(v.live.now) {
			v.live.now = at
		}
		v.live.running = append(v.live.running, runningStep{id: s.ID, line: line, at: at})
		v.startTicking()
		_ = v.write(func(b *strings.Builder) { b.WriteString(line + "...\n") })
		return
	}
	_ = v.printf("%s...\n", line)
}

// StepWaiting shows what a running step waits for: beside the step in the
// live region, else as a line of its own.
func (v *applyView) StepWaiting(s plan.Step, what string) {
	if v.json {
		_ = v.emit(applyEvent{Type: "step_waiting", Step: s.ID, Action: s.Action, Waiting: what})
		return
	}
	if v.live == nil {
		_ = v.printf("%s: waiting for %s\n", s.ID, escapeField(what))
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := range v.live.running {
		if v.live.running[i].id == s.ID {
			v.live.running[i].waiting = what
		}
	}
	_ = v.write(func(*strings.Builder) {})
}

// StepFinished prints how a step ended.
func (v *applyView) StepFinished(s plan.Step, r apply.StepResult) {
	if v.json {
		_ = v.emit(applyEvent{Type: "step_finished", Step: s.ID, Action: s.Action, Status: string(r.Status),
			ElapsedMS: r.Elapsed.Milliseconds(), Instances: r.Instances, Error: r.Error})
		return
	}
	if v.live != nil {
		v.mu.Lock()
		v.live.running = slices.DeleteFunc(v.live.running, func(x runningStep) bool { return x.id == s.ID })
		v.mu.Unlock()
	}
	switch r.Status {
	case apply.StatusDone:
		extra := ""
		if len(r.Instances) > 0 {
			extra = " [" + escapeField(strings.Join(r.Instances, ", ")) + "]"
		}
		_ = v.printf("%s: done after %s%s\n", s.ID, r.Elapsed.Round(100*time.Millisecond), extra)
	case apply.StatusSkipped:
		_ = v.printf("%s: %s\n", s.ID, escapeField(r.Error))
	default:
		_ = v.printf("%s: %s after %s: %s\n", s.ID, r.Status, r.Elapsed.Round(100*time.Millisecond), escapeField(r.Error))
	}
}

// stepLine is "<id>: <action> <group> <target>" (without the empty parts).
func stepLine(s plan.Step) string {
	return s.ID + ": " + string(s.Action) + suffix(s.Group) + suffix(target(s))
}

// count is "1 step", "2 steps" (regular plurals only).
func count(n int, noun string) string {
	return plural(n, "1 "+noun, "%d "+noun+"s")
}

// plural picks the singular text for 1, else formats the plural with n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf(many, n)
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
	v.close()
	msg := fmt.Sprintf("Apply: %d done, %d failed, %d skipped, %d not run.\n", len(done), len(failed), len(skipped), len(left))
	if len(failed) == 0 && len(skipped) == 0 && len(left) == 0 {
		msg = fmt.Sprintf("Apply complete: %s done.\n", count(len(done), "step"))
	}
	return v.printf("%s", msg)
}
