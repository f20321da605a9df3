package plan

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/schema"
)

// MismatchKind is why a saved plan may not run; the values are what users
// see.
type MismatchKind string

// Why a saved plan is refused.
const (
	// MismatchStale: the world (or the spec the plan's ref names, or the
	// time-dependent parts of the policy) changed since the plan was made.
	MismatchStale MismatchKind = "plan is stale"
	// MismatchEdited: the file says what its source does not (an edited
	// step or desired spec).
	MismatchEdited MismatchKind = "plan file does not match its source"
	// MismatchWindow: the plan was made inside a disruption window that
	// has closed since.
	MismatchWindow MismatchKind = "outside the disruption window"
)

// MismatchError refuses a saved plan, naming the first difference.
type MismatchError struct {
	Kind   MismatchKind
	Detail string
}

func (e *MismatchError) Error() string {
	return string(e.Kind) + ": " + e.Detail + "; nothing was changed: run plan again"
}

// Verify decides whether the saved plan may run now. desired is the spec
// at the plan's source revision (src), obs a fresh observation taken now.
// It recomputes the plan and returns the plan to execute when it has the
// same steps in the same order with the same targets as the file; otherwise
// a *MismatchError naming the first difference:
//
//   - the file's desired spec is not the spec at its revision: edited;
//   - the observation's fingerprint differs: stale (the world changed);
//   - the plan recomputed at the time the file was made differs from the
//     file: edited (a step);
//   - only the time differs: outside the disruption window when a window
//     was open then and none is now, else stale.
//
// The plan returned is the recomputed one: it differs from the file at most
// in the time a scheduled join-token rotation records (the planner's "now",
// a lower bound that may only move forward).
func Verify(saved *Plan, desired schema.Cluster, obs Observed, src Source) (*Plan, error) {
	if d := firstDifference(saved.Desired, desired, "desired"); d != "" {
		return nil, &MismatchError{MismatchEdited, fmt.Sprintf("its desired spec differs from the spec at %s (%s)", revision(src), d)}
	}
	if fp := obs.Canonical().Fingerprint(); fp != saved.Observation.Fingerprint {
		return nil, &MismatchError{MismatchStale, fmt.Sprintf("cluster %s changed since the plan was made at %s (observation %.12s, plan %.12s)",
			saved.Cluster, saved.Observation.TakenAt.UTC().Format(time.RFC3339), fp, saved.Observation.Fingerprint)}
	}
	now, err := Compute(desired, obs, src)
	if err != nil {
		return nil, err
	}
	d := stepsDifference(saved.Steps, now.Steps)
	if d == "" {
		return now, nil
	}
	then := obs
	then.TakenAt = saved.Observation.TakenAt
	atPlanTime, err := Compute(desired, then, src)
	if err != nil {
		return nil, err
	}
	if e := stepsDifference(saved.Steps, atPlanTime.Steps); e != "" {
		return nil, &MismatchError{MismatchEdited, e}
	}
	ws := desired.Schedule.DisruptionWindows
	wasOpen, _ := disruptionWindows(ws, then.TakenAt)
	isOpen, _ := disruptionWindows(ws, obs.TakenAt)
	if len(ws) > 0 && wasOpen.open && !isOpen.open {
		next := "no window opens within five years"
		if !isOpen.next.IsZero() {
			next = "the next opens at " + isOpen.next.Format(time.RFC3339)
		}
		return nil, &MismatchError{MismatchWindow, fmt.Sprintf("the plan was made at %s inside a disruption window (schedule.disruptionWindows); none is open at %s, %s (%s)",
			then.TakenAt.UTC().Format(time.RFC3339), obs.TakenAt.UTC().Format(time.RFC3339), next, d)}
	}
	return nil, &MismatchError{MismatchStale, fmt.Sprintf("the plan was made at %s; planned at %s, %s", then.TakenAt.UTC().Format(time.RFC3339), obs.TakenAt.UTC().Format(time.RFC3339), d)}
}

func revision(src Source) string {
	if src.Commit == "" {
		return "its source revision"
	}
	return "revision " + src.Commit
}

// stepsDifference describes the first difference between the file's steps
// and the planner's ("" when none). The time a scheduled rotation records
// is left out: it is the planner's "now" (see Verify).
func stepsDifference(file, planner []Step) string {
	for i := 0; i < len(file) && i < len(planner); i++ {
		f, p := file[i], planner[i]
		if !f.RecordRotatedAt.IsZero() && !p.RecordRotatedAt.IsZero() {
			f.RecordRotatedAt = p.RecordRotatedAt
		}
		if d := firstDifference(f, p, "steps["+fmt.Sprint(i)+"]"); d != "" {
			if df, dp := describeStep(f), describeStep(p); df != dp {
				return fmt.Sprintf("step %d (%s) differs from the planner's (%s): %s", i+1, df, dp, d)
			}
			return fmt.Sprintf("step %d (%s) differs from the planner's: %s", i+1, describeStep(f), d)
		}
	}
	switch {
	case len(file) > len(planner):
		return fmt.Sprintf("the file has %d step(s), the planner %d: step %d (%s) is not planned", len(file), len(planner), len(planner)+1, describeStep(file[len(planner)]))
	case len(file) < len(planner):
		return fmt.Sprintf("the file has %d step(s), the planner %d: step %d (%s) is missing", len(file), len(planner), len(file)+1, describeStep(planner[len(file)]))
	}
	return ""
}

func describeStep(s Step) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", s.ID, s.Action, s.Group)
	for _, t := range []string{s.Instance, s.Node, s.LaunchStep} {
		if t != "" {
			b.WriteString(" " + t)
		}
	}
	return b.String()
}

// firstDifference names the first field (as a JSON path under root) where
// a and b differ, with both values (quoted, cut short); "" when their JSON
// forms are equal.
func firstDifference(a, b any, root string) string {
	var x, y any
	if err := roundTrip(a, &x); err != nil {
		return root + ": " + err.Error()
	}
	if err := roundTrip(b, &y); err != nil {
		return root + ": " + err.Error()
	}
	return diffJSON(x, y, root)
}

func roundTrip(v any, out *any) error {
	bs, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(bs, out)
}

func diffJSON(x, y any, path string) string {
	if reflect.DeepEqual(x, y) {
		return ""
	}
	mx, okx := x.(map[string]any)
	my, oky := y.(map[string]any)
	if okx && oky {
		keys := map[string]bool{}
		for k := range mx {
			keys[k] = true
		}
		for k := range my {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			if d := diffJSON(mx[k], my[k], path+"."+k); d != "" {
				return d
			}
		}
		return ""
	}
	ax, okx := x.([]any)
	ay, oky := y.([]any)
	if okx && oky && len(ax) == len(ay) {
		for i := range ax {
			if d := diffJSON(ax[i], ay[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	return fmt.Sprintf("%s is %s in the file, %s when recomputed", path, short(x), short(y))
}

// short renders a JSON value for a message, quoted and cut to 60 bytes.
func short(v any) string {
	if v == nil {
		return "absent"
	}
	bs, _ := json.Marshal(v)
	s := string(bs)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return fmt.Sprintf("%q", s)
}
