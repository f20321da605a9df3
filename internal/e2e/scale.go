package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/schema"
)

// ScalePhase is what one phase of a scale run cost: its passes' wall time,
// API calls by phase of the pass, and steps and their wall time by action.
type ScalePhase struct {
	Name string `json:"name"`
	// Nodes is the size of the cluster when the phase ends.
	Nodes    int                      `json:"nodes"`
	Passes   int                      `json:"passes"`
	Wall     time.Duration            `json:"wall_ns"`
	Calls    CallCounts               `json:"calls"`
	Steps    map[string]int           `json:"steps"`
	StepWall map[string]time.Duration `json:"step_wall_ns"`
}

// ScaleReport is a whole scale run.
type ScaleReport struct {
	World    string       `json:"world"`
	Managers int          `json:"managers"`
	Workers  int          `json:"workers"`
	Delta    int          `json:"delta"`
	Phases   []ScalePhase `json:"phases"`
}

// waitPhases are the actions that wait by polling: each poll must list
// once, whatever the number of nodes.
var waitPhases = []string{string(plan.ActionAwaitJoin), string(plan.ActionAwaitDrained), string(plan.ActionRemoveNode)}

// maxCallsPerList bounds the calls a wait makes per listing (a poll is an
// observation: Info, SwarmInspect, NodeList; or one task listing), and
// maxCallsPerStep the calls a step makes once (the leadership fence, its
// own change).
const maxCallsPerList, maxCallsPerStep = 4, 4

// Scale runs the scale scenario on a world that counts its calls: 3
// managers + workers from nothing, workers +delta, −delta, then a rolling
// replacement of the worker group, each followed by a steady pass that must
// plan nothing. It checks that the steady pass costs the same number of
// calls at both sizes, that every launch of workers is one cloud call,
// and that waits list once per poll (at most maxCallsPerList calls per
// listing, plus maxCallsPerStep per step). The spec runs one step at a time, so calls are attributed to
// the step that made them.
func Scale(t testing.TB, w *World, workers, delta int) ScaleReport {
	t.Helper()
	if w.Calls == nil {
		t.Fatal("Scale needs a world that counts its calls (World.CountCalls)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute+time.Duration(workers+delta)*20*time.Second)
	defer cancel()
	base := w.Spec
	base.Safety.MaxRemovalsPerApply = workers + delta
	base.Update.Parallelism, base.Update.MaxSurge = 1, 1
	// Joining takes longer when many engines start at once on two cores.
	base.Update.JoinTimeout.Duration = max(base.Update.JoinTimeout.Duration, time.Duration(workers)*3*time.Second)
	// And so does stopping many at once (a removed node is Down only once
	// its engine stopped).
	base.Update.DrainTimeout.Duration = max(base.Update.DrainTimeout.Duration, time.Duration(workers+delta)*5*time.Second)
	rep := ScaleReport{World: w.Name, Managers: 3, Workers: workers, Delta: delta}
	// The phases measured so far are written even when a later one fails.
	defer func() {
		if dir := os.Getenv("SWARMSYNC_PERF_OUT"); dir != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			name := filepath.Join(dir, fmt.Sprintf("scale-%s-%d.json", w.Name, workers))
			if err := os.WriteFile(name, b, 0o644); err != nil {
				t.Errorf("failed to write %s: %v", name, err)
			}
		}
	}()
	rec := &Recorder{}

	phase := func(name string, spec schema.Cluster) ScalePhase {
		t.Helper()
		w.Calls.Reset()
		start := time.Now()
		ph := ScalePhase{Name: name, Nodes: spec.Managers.Count + spec.Workers["general"].Count}
		for {
			p, _, err := Converge(ctx, t, w, spec, rec)
			if err != nil {
				t.Fatalf("%s: %v\nprogress:\n%s", name, err, tail(rec.Text(), 40))
			}
			ph.Passes++
			if len(p.Steps) == 0 {
				break
			}
			if ph.Passes > 5 {
				t.Fatalf("%s: still planning %d steps after %d passes", name, len(p.Steps), ph.Passes)
			}
		}
		ph.Wall = time.Since(start)
		ph.Calls = w.Calls.Counts()
		ph.Steps, ph.StepWall = w.Calls.Steps()
		CheckShape(ctx, t, w, spec)
		t.Logf("FIGURE %s: %d nodes, %d passes, %s; steps %v", name, ph.Nodes, ph.Passes, ph.Wall.Round(10*time.Millisecond), ph.Steps)
		rep.Phases = append(rep.Phases, ph)
		return ph
	}
	steady := func(spec schema.Cluster) ScalePhase {
		t.Helper()
		w.Calls.Reset()
		start := time.Now()
		p, _, err := Converge(ctx, t, w, spec, rec)
		if err != nil {
			t.Fatalf("steady pass: %v", err)
		}
		if len(p.Steps) != 0 {
			t.Fatalf("steady pass planned %d steps, want none: %v", len(p.Steps), stepIDs(p))
		}
		ph := ScalePhase{Name: "steady pass", Nodes: spec.Managers.Count + spec.Workers["general"].Count,
			Passes: 1, Wall: time.Since(start), Calls: w.Calls.Counts()}
		t.Logf("FIGURE steady pass at %d nodes: %s, calls %v", ph.Nodes, ph.Wall.Round(time.Millisecond), ph.Calls)
		rep.Phases = append(rep.Phases, ph)
		return ph
	}

	small := withCounts(base, 3, workers)
	boot := phase(fmt.Sprintf("bootstrap 3+%d", workers), small)
	s1 := steady(small)
	big := withCounts(base, 3, workers+delta)
	up := phase(fmt.Sprintf("workers +%d", delta), big)
	s2 := steady(big)
	phase(fmt.Sprintf("workers -%d", delta), small)
	changed := small
	g := changed.Workers["general"]
	g.Instance.Type = "bigger"
	changed.Workers["general"] = g
	phase(fmt.Sprintf("replace %d workers", workers), changed)

	// A pass on a steady cluster costs the same at both sizes.
	for _, phase := range []string{"observe", "apply"} {
		a, b := s1.Calls[phase], s2.Calls[phase]
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("a steady pass's %s calls grow with the cluster: %d nodes %v, %d nodes %v", phase, s1.Nodes, a, s2.Nodes, b)
		}
	}
	// Launches are batched: one cloud call per launch step.
	for _, ph := range []ScalePhase{boot, up} {
		c := ph.Calls[string(plan.ActionLaunch)]
		if c["cloud Launch"] != ph.Steps[string(plan.ActionLaunch)] {
			t.Errorf("%s: %d Launch calls for %d launch steps", ph.Name, c["cloud Launch"], ph.Steps[string(plan.ActionLaunch)])
		}
	}
	if n := up.Calls[string(plan.ActionLaunch)]["cloud Launch"]; n != 1 {
		t.Errorf("%s: %d Launch calls, want 1 (one batch)", up.Name, n)
	}
	// Waits list once per poll.
	for _, ph := range rep.Phases {
		for _, wp := range waitPhases {
			lists := ph.Calls.Lists(wp)
			if lists == 0 {
				continue
			}
			total := ph.Calls.Total(wp, "docker ") + ph.Calls.Total(wp, "cloud ")
			if bound := maxCallsPerList*lists + maxCallsPerStep*ph.Steps[wp]; total > bound {
				t.Errorf("%s: %d %s steps made %d calls for %d listings (more than %d per poll and %d per step): %v",
					ph.Name, ph.Steps[wp], wp, total, lists, maxCallsPerList, maxCallsPerStep, ph.Calls[wp])
			}
		}
	}
	// Waits that run at the same time share their listings: however many
	// nodes leave at once, the nodes are listed at most once per poll
	// interval for the waits, plus once or twice per step and a few times
	// per pass.
	for _, ph := range rep.Phases {
		lists, steps := 0, 0
		for _, m := range ph.Calls {
			lists += m["docker GET /nodes"]
		}
		for _, n := range ph.Steps {
			steps += n
		}
		if bound := int(ph.Wall/ConvergePoll) + 2*steps + 4*ph.Passes; lists > bound {
			t.Errorf("%s: %d node listings in %s with %d steps and %d passes (more than one per poll interval, 2 per step and 4 per pass: %d): waits do not share their listings",
				ph.Name, lists, ph.Wall.Round(time.Second), steps, ph.Passes, bound)
		}
	}
	t.Logf("FIGURE calls per phase:\n%s", rep.Table())
	return rep
}

// Table renders the report: one line per phase and pass phase, with calls
// and listings.
func (r ScaleReport) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %-14s %6s %6s %6s %8s  %s\n", "phase", "of pass", "docker", "cloud", "lists", "wall", "calls")
	for _, ph := range r.Phases {
		for _, p := range ph.Calls.Phases() {
			var calls []string
			for k, v := range ph.Calls[p] {
				calls = append(calls, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(calls)
			fmt.Fprintf(&b, "%-22s %-14s %6d %6d %6d %8s  %s\n", ph.Name, p, ph.Calls.Total(p, "docker "), ph.Calls.Total(p, "cloud "),
				ph.Calls.Lists(p), ph.StepWall[p].Round(10*time.Millisecond), strings.Join(calls, " "))
		}
	}
	return b.String()
}
