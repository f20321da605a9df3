package plan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/schema"
)

// TestVerify refuses a saved plan for the first difference between the file
// and the plan recomputed from its source and a fresh observation.
func TestVerify(t *testing.T) {
	src := Source{Repo: "/specs", Commit: "c0ffee", SpecDigest: "d1"}
	saturday3 := time.Date(2026, 5, 2, 3, 0, 0, 0, time.UTC) // inside "0 2 * * SAT" for 4h
	tests := []struct {
		name string
		// edit changes the spec, the observation now and the saved plan
		// (made from the unchanged spec and observation).
		spec     func(c *schema.Cluster)
		edit     func(p *Plan)
		now      func(o *Observed)
		wantKind MismatchKind
		want     string
	}{
		{name: "unchanged: runs"},
		{
			name:     "edited step",
			edit:     func(p *Plan) { p.Steps[0].Count = 3 },
			wantKind: MismatchEdited,
			want:     "step 1 (launch-workers-web-1 launch workers/web) differs from the planner's: steps[0].count is \"3\" in the file, \"1\" when recomputed",
		},
		{
			name:     "edited target",
			edit:     func(p *Plan) { p.Steps[1].LaunchStep = "launch-managers-1" },
			wantKind: MismatchEdited,
			want:     "steps[1].launch_step",
		},
		{
			name: "step added",
			edit: func(p *Plan) {
				p.Steps = append(p.Steps, Step{ID: "terminate-x", Action: ActionTerminate, Group: "workers/web", Instance: "i-m1"})
			},
			wantKind: MismatchEdited,
			want:     "is not planned",
		},
		{
			name:     "edited desired spec",
			edit:     func(p *Plan) { w := p.Desired.Workers["web"]; w.Count = 9; p.Desired.Workers["web"] = w },
			wantKind: MismatchEdited,
			want:     "its desired spec differs from the spec at revision c0ffee (desired.workers.web.count is \"9\" in the file, \"4\" when recomputed)",
		},
		{
			name:     "world changed",
			now:      func(o *Observed) { o.Instances = o.Instances[1:] },
			wantKind: MismatchStale,
			want:     "cluster prod changed since the plan was made",
		},
		{
			name: "made inside a disruption window, applied after it",
			spec: func(c *schema.Cluster) {
				w := c.Workers["web"]
				w.Count = 2 // a scale-down: disruptive
				c.Workers["web"] = w
				c.Schedule.DisruptionWindows = []schema.Window{{Cron: "0 2 * * SAT", Duration: schema.Duration{Duration: 4 * time.Hour}}}
			},
			now:      func(o *Observed) { o.TakenAt = saturday3.Add(5 * time.Hour) },
			wantKind: MismatchWindow,
			want:     "none is open at 2026-05-02T08:00:00Z, the next opens at 2026-05-09T02:00:00Z",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, o := steadyCluster(t)
			w := c.Workers["web"]
			w.Count = 4
			c.Workers["web"] = w
			if tc.spec != nil {
				tc.spec(&c)
			}
			o.TakenAt = saturday3
			saved, err := Compute(c, o, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(saved.Steps) < 2 {
				t.Fatalf("the saved plan has %d steps; the test needs changes", len(saved.Steps))
			}
			saved = reread(t, saved)
			if tc.edit != nil {
				tc.edit(saved)
			}
			now := o
			now.TakenAt = saturday3.Add(10 * time.Minute)
			if tc.now != nil {
				tc.now(&now)
			}
			got, err := Verify(saved, c, now, src)
			if tc.wantKind == "" {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				if d := stepsDifference(saved.Steps, got.Steps); d != "" {
					t.Errorf("the plan to run differs from the file: %s", d)
				}
				return
			}
			var me *MismatchError
			if !errors.As(err, &me) || me.Kind != tc.wantKind || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify = %v; want %q containing %q", err, tc.wantKind, tc.want)
			}
			if !strings.HasPrefix(err.Error(), string(tc.wantKind)+": ") {
				t.Errorf("the error does not start with %q: %v", tc.wantKind, err)
			}
		})
	}
}

// reread is p as a plan file gives it back.
func reread(t *testing.T, p *Plan) *Plan {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := UnmarshalPlan(b)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
