package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/plan"
)

func TestApplyViewProgress(t *testing.T) {
	launch := plan.Step{ID: "launch-workers-general-1", Action: plan.ActionLaunch, Group: "workers/general", Reason: "2 of 4"}
	drain := plan.Step{ID: "drain-1", Action: plan.ActionDrain, Group: "workers/general", Instance: "l-1", Node: "n1"}
	rotate := plan.Step{ID: "rotate-join-tokens", Action: plan.ActionRotateJoinToken, RotateWorker: true, RotateManager: true}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	feed := func(v *applyView) {
		v.StepStarted(launch, at)
		v.StepFinished(launch, apply.StepResult{ID: launch.ID, Action: launch.Action, Status: apply.StatusDone, Elapsed: 1500 * time.Millisecond, Instances: []string{"l-2", "l-3"}})
		v.StepStarted(drain, at)
		v.StepWaiting(drain, "node n1 to stop its tasks")
		v.StepStarted(rotate, at)
		v.StepFinished(rotate, apply.StepResult{ID: rotate.ID, Action: rotate.Action, Status: apply.StatusDone, Elapsed: 100 * time.Millisecond})
		v.StepFinished(drain, apply.StepResult{ID: drain.ID, Action: drain.Action, Status: apply.StatusFailed, Elapsed: 200 * time.Millisecond, Error: "failed to drain node n1: boom"})
		_ = v.summary(&apply.Result{Steps: []apply.StepResult{
			{ID: launch.ID, Status: apply.StatusDone}, {ID: drain.ID, Status: apply.StatusFailed}, {ID: "terminate-1", Status: apply.StatusNotRun},
		}})
	}
	tests := []struct {
		name   string
		format string
		want   []string
	}{
		{
			name: "text", format: "text",
			want: []string{
				"launch-workers-general-1: launch workers/general...",
				"launch-workers-general-1: done after 1.5s [l-2, l-3]",
				"drain-1: drain workers/general l-1/n1...",
				"drain-1: waiting for node n1 to stop its tasks",
				"rotate-join-tokens: rotate-join-token worker and manager token...",
				"rotate-join-tokens: done after 100ms",
				"drain-1: failed after 200ms: failed to drain node n1: boom",
				"Apply: 1 done, 1 failed, 0 skipped, 1 not run.",
			},
		},
		{
			name: "json", format: "json",
			want: []string{
				`{"type":"step_started","time":"2026-01-02T03:04:05Z","step":"launch-workers-general-1","action":"launch","group":"workers/general","reason":"2 of 4"}`,
				`{"type":"step_finished","step":"launch-workers-general-1","action":"launch","status":"done","elapsed_ms":1500,"instances":["l-2","l-3"]}`,
				`{"type":"step_started","time":"2026-01-02T03:04:05Z","step":"drain-1","action":"drain","group":"workers/general","target":"l-1/n1"}`,
				`{"type":"step_waiting","step":"drain-1","action":"drain","waiting":"node n1 to stop its tasks"}`,
				`{"type":"step_started","time":"2026-01-02T03:04:05Z","step":"rotate-join-tokens","action":"rotate-join-token","target":"worker and manager token"}`,
				`{"type":"step_finished","step":"rotate-join-tokens","action":"rotate-join-token","status":"done","elapsed_ms":100}`,
				`{"type":"step_finished","step":"drain-1","action":"drain","status":"failed","elapsed_ms":200,"error":"failed to drain node n1: boom"}`,
				`{"type":"summary","done":["launch-workers-general-1"],"failed":["drain-1"],"not_run":["terminate-1"]}`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			v, err := newApplyView(&buf, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			feed(v)
			got := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if tc.format == "json" {
				for _, l := range got {
					if !json.Valid([]byte(l)) {
						t.Errorf("not one JSON value per line: %s", l)
					}
				}
			}
		})
	}
	if _, err := newApplyView(&bytes.Buffer{}, "xml"); err == nil {
		t.Error("format xml accepted")
	}
}

// frames records every Write as one frame and signals it.
type frames struct {
	mu  sync.Mutex
	all []string
	got chan struct{}
}

func newFrames() *frames { return &frames{got: make(chan struct{}, 64)} }

func (f *frames) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.all = append(f.all, string(p))
	f.mu.Unlock()
	f.got <- struct{}{}
	return len(p), nil
}

// next waits for the next frame.
func (f *frames) next(t *testing.T) {
	t.Helper()
	select {
	case <-f.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no frame was written")
	}
}

func (f *frames) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.all)
}

// screen is the little of a terminal the live view uses: printable text,
// \r, \n (with the tty's usual \n → \r\n), ESC[nA (cursor up) and ESC[J
// (erase to the end of the screen). Anything else fails the test.
type screen struct {
	t     *testing.T
	lines [][]rune
	row   int
	col   int
}

func (s *screen) feed(out string) {
	s.t.Helper()
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; {
		case c == '\r':
			s.col = 0
		case c == '\n':
			s.row++
			s.col = 0
		case c == '\x1b':
			j := i + 1
			if j >= len(rs) || rs[j] != '[' {
				s.t.Fatalf("unexpected escape in %q", out)
			}
			j++
			n := 0
			for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
				n = n*10 + int(rs[j]-'0')
				j++
			}
			if j >= len(rs) {
				s.t.Fatalf("unterminated escape in %q", out)
			}
			switch rs[j] {
			case 'A':
				s.row = max(s.row-max(n, 1), 0)
			case 'J':
				if s.row < len(s.lines) {
					s.lines[s.row] = s.lines[s.row][:min(s.col, len(s.lines[s.row]))]
					s.lines = s.lines[:s.row+1]
				}
			default:
				s.t.Fatalf("unexpected escape ESC[%d%c in %q", n, rs[j], out)
			}
			i = j
		case c < ' ':
			s.t.Fatalf("unexpected control %q in %q", c, out)
		default:
			for len(s.lines) <= s.row {
				s.lines = append(s.lines, nil)
			}
			l := s.lines[s.row]
			for len(l) <= s.col {
				l = append(l, ' ')
			}
			l[s.col] = c
			s.lines[s.row] = l
			s.col++
		}
	}
}

// text is the screen's lines, without trailing empty ones.
func (s *screen) text() []string {
	var out []string
	for _, l := range s.lines {
		out = append(out, string(l))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// TestApplyViewLive feeds a live view (a fake terminal of 60 columns, a
// manual ticker) two overlapping steps and ticks, and checks every frame
// written and what the screen shows after each.
func TestApplyViewLive(t *testing.T) {
	launch := plan.Step{ID: "launch-workers-general-1", Action: plan.ActionLaunch, Group: "workers/general", Reason: "2 of 4"}
	drain := plan.Step{ID: "drain-1", Action: plan.ActionDrain, Group: "workers/general", Instance: "l-1", Node: "n1"}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	out := newFrames()
	ticks := make(chan time.Time)
	tickerStarted, tickerStopped := 0, 0
	v, err := newApplyView(out, "text")
	if err != nil {
		t.Fatal(err)
	}
	v.live = newLiveRegion(func() int { return 60 }, func() (<-chan time.Time, func()) {
		tickerStarted++
		return ticks, func() { tickerStopped++ }
	})
	scr := &screen{t: t}
	const (
		up1 = "\r\x1b[1A\x1b[J"
		up2 = "\r\x1b[2A\x1b[J"
	)
	steps := []struct {
		name      string
		do        func()
		wantFrame string
		wantScr   []string
	}{
		{
			name:      "launch starts",
			do:        func() { v.StepStarted(launch, t0) },
			wantFrame: "launch-workers-general-1: launch workers/general...\n  [   0s] launch-workers-general-1: launch workers/general\n",
			wantScr: []string{
				"launch-workers-general-1: launch workers/general...",
				"  [   0s] launch-workers-general-1: launch workers/general",
			},
		},
		{
			name:      "a tick redraws the region in place",
			do:        func() { ticks <- t0.Add(1500 * time.Millisecond) },
			wantFrame: up1 + "  [   1s] launch-workers-general-1: launch workers/general\n",
			wantScr: []string{
				"launch-workers-general-1: launch workers/general...",
				"  [   1s] launch-workers-general-1: launch workers/general",
			},
		},
		{
			name:      "drain starts: its line scrolls above, the region grows",
			do:        func() { v.StepStarted(drain, t0.Add(2*time.Second)) },
			wantFrame: up1 + "drain-1: drain workers/general l-1/n1...\n  [   2s] launch-workers-general-1: launch workers/general\n  [   0s] drain-1: drain workers/general l-1/n1\n",
			wantScr: []string{
				"launch-workers-general-1: launch workers/general...",
				"drain-1: drain workers/general l-1/n1...",
				"  [   2s] launch-workers-general-1: launch workers/general",
				"  [   0s] drain-1: drain workers/general l-1/n1",
			},
		},
		{
			name:      "a tick after a minute",
			do:        func() { ticks <- t0.Add(65 * time.Second) },
			wantFrame: up2 + "  [ 1m5s] launch-workers-general-1: launch workers/general\n  [ 1m3s] drain-1: drain workers/general l-1/n1\n",
			wantScr: []string{
				"launch-workers-general-1: launch workers/general...",
				"drain-1: drain workers/general l-1/n1...",
				"  [ 1m5s] launch-workers-general-1: launch workers/general",
				"  [ 1m3s] drain-1: drain workers/general l-1/n1",
			},
		},
		{
			name: "launch finishes: its line scrolls above, the region shrinks",
			do: func() {
				v.StepFinished(launch, apply.StepResult{ID: launch.ID, Status: apply.StatusDone, Elapsed: 65200 * time.Millisecond, Instances: []string{"l-2", "l-3"}})
			},
			wantFrame: up2 + "launch-workers-general-1: done after 1m5.2s [l-2, l-3]\n  [ 1m3s] drain-1: drain workers/general l-1/n1\n",
			wantScr: []string{
				"launch-workers-general-1: launch workers/general...",
				"drain-1: drain workers/general l-1/n1...",
				"launch-workers-general-1: done after 1m5.2s [l-2, l-3]",
				"  [ 1m3s] drain-1: drain workers/general l-1/n1",
			},
		},
		{
			name: "drain fails: no region left",
			do: func() {
				v.StepFinished(drain, apply.StepResult{ID: drain.ID, Status: apply.StatusFailed, Elapsed: 63 * time.Second, Error: "failed to drain node n1: boom"})
			},
			wantFrame: up1 + "drain-1: failed after 1m3s: failed to drain node n1: boom\n",
			wantScr: []string{
				"launch-workers-general-1: launch workers/general...",
				"drain-1: drain workers/general l-1/n1...",
				"launch-workers-general-1: done after 1m5.2s [l-2, l-3]",
				"drain-1: failed after 1m3s: failed to drain node n1: boom",
			},
		},
		{
			name: "a tick with nothing running draws nothing; the summary closes",
			do: func() {
				ticks <- t0.Add(70 * time.Second)
				_ = v.summary(&apply.Result{Steps: []apply.StepResult{{ID: launch.ID, Status: apply.StatusDone}, {ID: drain.ID, Status: apply.StatusFailed}}})
			},
			wantFrame: "Apply: 1 done, 1 failed, 0 skipped, 0 not run.\n",
			wantScr: []string{
				"launch-workers-general-1: launch workers/general...",
				"drain-1: drain workers/general l-1/n1...",
				"launch-workers-general-1: done after 1m5.2s [l-2, l-3]",
				"drain-1: failed after 1m3s: failed to drain node n1: boom",
				"Apply: 1 done, 1 failed, 0 skipped, 0 not run.",
			},
		},
	}
	for i, st := range steps {
		st.do()
		out.next(t)
		got := out.list()
		if len(got) != i+1 {
			t.Fatalf("%s: %d frames written in all, want %d: %q", st.name, len(got), i+1, got)
		}
		if diff := cmp.Diff(st.wantFrame, got[i]); diff != "" {
			t.Errorf("%s: frame (-want +got):\n%s", st.name, diff)
		}
		scr.feed(got[i])
		if diff := cmp.Diff(st.wantScr, scr.text()); diff != "" {
			t.Errorf("%s: screen (-want +got):\n%s", st.name, diff)
		}
	}
	if tickerStarted != 1 || tickerStopped != 1 {
		t.Errorf("ticker started %d and stopped %d times, want once each", tickerStarted, tickerStopped)
	}
	v.close() // again, as execute does: nothing more is written
	if n := len(out.list()); n != len(steps) {
		t.Errorf("%d frames after a second close, want %d", n, len(steps))
	}
}

// TestApplyViewLiveNarrow: region lines wrap at word boundaries within the
// terminal's width (one column spare, so the terminal never wraps them),
// and nothing is cut: what a step waits for shows in full.
func TestApplyViewLiveNarrow(t *testing.T) {
	var buf bytes.Buffer
	v, err := newApplyView(&buf, "text")
	if err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time)
	v.live = newLiveRegion(func() int { return 30 }, func() (<-chan time.Time, func()) { return ticks, func() {} })
	s := plan.Step{ID: "await-join-workers-general-1", Action: plan.ActionAwaitJoin, Group: "workers/general"}
	v.StepStarted(s, time.Unix(0, 0))
	v.StepWaiting(s, "1 of 2 new instance(s) to join: i-0123456789abcdef0")
	v.close()
	want := "await-join-workers-general-1: await-join workers/general...\n" +
		"  [   0s]\n" +
		"          await-join-workers-\n" +
		"          general-1:\n" +
		"          await-join\n" +
		"          workers/general\n" +
		"\r\x1b[5A\x1b[J" +
		"  [   0s]\n" +
		"          await-join-workers-\n" +
		"          general-1:\n" +
		"          await-join\n" +
		"          workers/general -\n" +
		"          waiting for 1 of 2\n" +
		"          new instance(s) to\n" +
		"          join:\n" +
		"          i-0123456789abcdef0\n" +
		"\r\x1b[9A\x1b[J"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// TestApplyViewFor: the live view only on a terminal; a buffer or a
// regular file gets today's plain lines.
func TestApplyViewFor(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name   string
		w      io.Writer
		format string
	}{
		{"buffer", &bytes.Buffer{}, "text"},
		{"regular file", f, "text"},
		{"json", f, "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := applyViewFor(tc.w, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			if v.live != nil {
				t.Error("live view on something that is not a terminal")
			}
		})
	}
}

// escapes matches the ANSI sequences the live view writes.
var escapes = regexp.MustCompile("\x1b\\[[0-9]*[AJ]")

// TestApplyLiveViewOnTerminal runs a real `swarmsync apply` on a
// pseudo-terminal of 70 columns (script(1)): after a bootstrap of one
// manager and two workers on local machines, the scale-down of a worker,
// whose remove-node waits seconds for the node to be Down. The live view is
// on, every step is drawn in the running region within the width, the
// region ticks, and once done the screen holds exactly the usual lines:
// each step's start and finish, then the summary.
func TestApplyLiveViewOnTerminal(t *testing.T) {
	testenv.NeedCommands(t, "script", "stty")
	_, subnet := localLab(t, "ptylab")
	bin := filepath.Join(t.TempDir(), "swarmsync")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	setWorkers := func(n int) { writeLabSpec(t, repo, "ptylab", subnet, 1, n, fastUserData(t)) }
	setWorkers(2)
	var bootOut, bootErr strings.Builder
	if code := Main([]string{"apply", "--yes", "--repo", repo}, strings.NewReader(""), &bootOut, &bootErr); code != 0 {
		t.Fatalf("bootstrap: exit %d\n%s\n%s", code, bootOut.String(), bootErr.String())
	}
	setWorkers(1)
	var planOut, planErr strings.Builder
	if code := Main([]string{"plan", "--repo", repo, "--format", "json"}, strings.NewReader(""), &planOut, &planErr); code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, planErr.String())
	}
	p, err := plan.UnmarshalPlan([]byte(planOut.String()))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-q", "-e", "-c",
		"stty cols 70 rows 40 && exec "+bin+" apply --yes --repo "+repo, "/dev/null")
	cmd.Stdin = strings.NewReader("")
	raw, err := cmd.Output()
	out := string(raw)
	if err != nil {
		t.Fatalf("apply on a terminal: %v\n%q", err, out)
	}
	if !strings.Contains(out, "\x1b[J") {
		t.Fatalf("no live region was drawn on the terminal:\n%q", out)
	}
	if strings.Contains(out, "SWMTKN-") {
		t.Error("a join token appears in the output")
	}

	// Every region line fits in 69 columns; every step was drawn there.
	drawn := map[string]bool{}
	ticked := 0
	for _, l := range strings.Split(escapes.ReplaceAllString(out, ""), "\n") {
		l = strings.TrimRight(strings.TrimLeft(l, "\r"), "\r")
		if !strings.HasPrefix(l, "  [") {
			continue
		}
		if n := len([]rune(l)); n > 69 {
			t.Errorf("a region line of %d columns on a 70-column terminal: %q", n, l)
		}
		if !strings.HasPrefix(l, "  [   0s]") {
			ticked++
		}
		if _, rest, ok := strings.Cut(l, "] "); ok {
			id, _, _ := strings.Cut(rest, ":")
			drawn[strings.TrimSuffix(id, "~")] = true
		}
	}
	scr := &screen{t: t}
	scr.feed(strings.ReplaceAll(out, "\t", "    "))
	final := scr.text()
	for _, s := range p.Steps {
		found := false
		for id := range drawn {
			found = found || strings.HasPrefix(s.ID, id)
		}
		if !found {
			t.Errorf("step %s was never drawn in the running region", s.ID)
		}
	}
	// The usual lines, in order on the screen after the plan: each start
	// line before its step's finish line, then the summary, and nothing of
	// the region left.
	var got []string
	for i, l := range final {
		if strings.HasPrefix(l, p.Steps[0].ID+": ") {
			got = final[i:]
			break
		}
	}
	// The providers' log lines come through the view (never inside the
	// region, where a redraw would erase them in part); they are not
	// counted.
	got = slices.DeleteFunc(got, func(l string) bool { return strings.HasPrefix(l, "INFO ") })
	if len(got) != 2*len(p.Steps)+1 {
		t.Fatalf("the screen ends with %d lines, want %d (a start and a finish line per step, the summary):\n%s",
			len(got), 2*len(p.Steps)+1, strings.Join(final, "\n"))
	}
	for _, s := range p.Steps {
		start := slices.Index(got, stepLine(s)+"...")
		finish := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, s.ID+": done after ") })
		if start < 0 || finish < start {
			t.Errorf("step %s: start line at %d, finish line at %d on the screen:\n%s", s.ID, start, finish, strings.Join(got, "\n"))
		}
	}
	if want := fmt.Sprintf("Apply complete: %s done.", count(len(p.Steps), "step")); got[len(got)-1] != want {
		t.Errorf("last line %q, want %q", got[len(got)-1], want)
	}
	// A tick redraws the region alone: an erase directly followed by a
	// region line. The scale-down takes seconds (the node must be Down
	// before remove-node ends: about 3s with a 1s heartbeat), so ticks came
	// while a step ran.
	ticks := strings.Count(out, "\x1b[J  [")
	if ticks == 0 {
		t.Error("the running region was never redrawn by a tick")
	}
	t.Logf("%d redraws by a tick, %d region lines with 1s or more; the screen ends with:\n%s", ticks, ticked, strings.Join(got, "\n"))
}

func stepIDs(p *plan.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.ID)
	}
	return out
}
