package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// instanceStates lists every instance the lab ever launched with its state:
// "nothing changed" means this is the same before and after.
func (k *killLab) instanceStates() []string {
	k.t.Helper()
	insts, err := k.cloud.Instances(context.Background(), "killlab")
	if err != nil {
		k.t.Fatal(err)
	}
	var out []string
	for _, in := range insts {
		out = append(out, in.ID+"="+string(in.State))
	}
	slices.Sort(out)
	return out
}

// editPlan writes a copy of the plan file src with edit applied to its JSON.
func editPlan(t *testing.T, src, dst string, edit func(p map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	edit(p)
	if b, err = json.Marshal(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestApplyPlanFileReverified runs `swarmsync apply PLANFILE` on a real
// Swarm: an edited step, an edited desired spec, a plan from before a spec
// change and a plan made inside a disruption window applied after it are
// each refused with the first difference named, and nothing changes; the
// unedited plan then runs.
func TestApplyPlanFileReverified(t *testing.T) {
	k := newKillLab(t)
	k.setWorkers(1)
	k.launched = 2
	k.converge("bootstrap")
	k.check("bootstrap", 1)

	dir := t.TempDir()
	saved := filepath.Join(dir, "up.json")
	k.setWorkers(2)
	if code, out := k.run("plan", "--out", saved); code != 0 {
		t.Fatalf("plan --out: exit %d\n%s", code, out)
	}
	refused := func(what, file, want string) {
		t.Helper()
		before := k.instanceStates()
		code, out := k.run("apply", file, "--yes")
		if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "nothing was changed") {
			t.Errorf("%s: apply exited %d with %q; want 1 and %q", what, code, out, want)
		}
		if after := k.instanceStates(); !slices.Equal(before, after) {
			t.Errorf("%s: instances changed: %v, before %v", what, after, before)
		}
	}

	edited := filepath.Join(dir, "edited.json")
	editPlan(t, saved, edited, func(p map[string]any) {
		p["steps"].([]any)[0].(map[string]any)["count"] = 3
	})
	refused("edited step", edited, `plan file does not match its source: step 1 (launch-workers-general-1 launch workers/general) differs from the planner's: steps[0].count is "3" in the file, "1" when recomputed`)

	editPlan(t, saved, edited, func(p map[string]any) {
		p["desired"].(map[string]any)["workers"].(map[string]any)["general"].(map[string]any)["count"] = 5
	})
	refused("edited desired spec", edited, `plan file does not match its source: its desired spec differs from the spec at revision dir:sha256:`)

	k.setWorkers(3)
	refused("plan from before a spec change", saved, "plan is stale: the specs in "+k.repo+" changed since the plan was made")

	// The same spec again: the plan runs.
	k.setWorkers(2)
	if code, out := k.run("apply", saved, "--yes"); code != 0 {
		t.Fatalf("apply of the unedited plan: exit %d\n%s", code, out)
	}
	k.launched++
	k.converge("after the saved plan")
	k.check("after the saved plan", 2)

	// A scale-down planned inside a disruption window (open for the first
	// 10s of every 20s), applied after it closed.
	k.setWorkers(1)
	f, err := os.OpenFile(filepath.Join(k.repo, "cluster.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("schedule:\n  disruptionWindows: [{cron: \"@every 20s\", duration: 10s}]\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitPhase := func(from, to int64) {
		for s := time.Now().Unix() % 20; s < from || s >= to; s = time.Now().Unix() % 20 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitPhase(0, 6)
	down := filepath.Join(dir, "down.json")
	if code, out := k.run("plan", "--out", down); code != 0 || !strings.Contains(out, "drain") {
		t.Fatalf("plan --out inside the window: exit %d, want a drain\n%s", code, out)
	}
	waitPhase(11, 18)
	refused("plan made inside a window, applied after it", down, "outside the disruption window: the plan was made at ")
	k.check("after the refused scale-down", 2)
}
