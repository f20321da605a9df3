package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/plan"
)

func TestApplyViewProgress(t *testing.T) {
	launch := plan.Step{ID: "launch-workers-general-1", Action: plan.ActionLaunch, Group: "workers/general", Reason: "2 of 4"}
	drain := plan.Step{ID: "drain-1", Action: plan.ActionDrain, Group: "workers/general", Instance: "l-1", Node: "n1"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	feed := func(v *applyView) {
		v.StepStarted(launch, at)
		v.StepFinished(launch, apply.StepResult{ID: launch.ID, Action: launch.Action, Status: apply.StatusDone, Elapsed: 1500 * time.Millisecond, Instances: []string{"l-2", "l-3"}})
		v.StepStarted(drain, at)
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
