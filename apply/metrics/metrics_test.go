package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/plan"
)

// scrape returns what /metrics serves.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMetrics feeds the loop's events and an observation, then checks the
// scraped series and that promtool accepts the exposition.
func TestMetrics(t *testing.T) {
	m := New("prod")
	start := time.Unix(1_800_000_000, 0)
	m.LeaderChecked(false, errors.New("Cannot connect to the Docker daemon"))
	m.PassFinished(apply.PassReport{Trigger: apply.TriggerStart, Result: apply.ResultUnknown})
	m.LeaderChecked(true, nil)
	m.PassStarted(apply.TriggerLeader, start)
	m.PassFinished(apply.PassReport{Trigger: apply.TriggerLeader, Result: apply.ResultFailed, Start: start, End: start.Add(3 * time.Second),
		Applied: apply.Applied{Steps: 3, Result: &apply.Result{Steps: []apply.StepResult{
			{ID: "a", Action: plan.ActionLaunch, Status: apply.StatusDone},
			{ID: "b", Action: plan.ActionAwaitJoin, Status: apply.StatusFailed},
			{ID: "c", Action: plan.ActionLabel, Status: apply.StatusNotRun},
		}}}})
	m.Paused(true)
	m.PassFinished(apply.PassReport{Trigger: apply.TriggerWebhook, Result: apply.ResultOK, Start: start.Add(time.Minute), End: start.Add(61 * time.Second)})
	m.Paused(false)
	m.Delivery("accepted")
	m.Delivery("bad-signature")
	m.Delivery("bad-signature")
	m.Observed(plan.Health{Swarm: plan.SwarmHealth{Managers: 3, Reachable: 2, Quorum: 2}, Groups: []plan.GroupHealth{
		{Name: "managers", Desired: 3, Ready: 2}, {Name: "workers/general", Desired: 4, Ready: 4}, {Name: "workers/old", Desired: 0, Ready: 1},
	}})
	m.Observed(plan.Health{Swarm: plan.SwarmHealth{Managers: 3, Reachable: 3, Quorum: 2}, Groups: []plan.GroupHealth{
		{Name: "managers", Desired: 3, Ready: 3}, {Name: "workers/general", Desired: 4, Ready: 4},
	}})
	out := scrape(t, m)
	for _, want := range []string{
		`swarmsync_passes_total{cluster="prod",result="leadership-unknown",trigger="start"} 1`,
		`swarmsync_passes_total{cluster="prod",result="failed",trigger="leader"} 1`,
		`swarmsync_passes_total{cluster="prod",result="ok",trigger="webhook"} 1`,
		`swarmsync_steps_total{action="launch",cluster="prod",result="done"} 1`,
		`swarmsync_steps_total{action="await-join",cluster="prod",result="failed"} 1`,
		`swarmsync_steps_total{action="label",cluster="prod",result="not-run"} 1`,
		`swarmsync_pass_duration_seconds_count{cluster="prod"} 2`,
		`swarmsync_pass_duration_seconds_sum{cluster="prod"} 4`,
		`swarmsync_last_success_timestamp_seconds{cluster="prod"} 1.800000061e+09`,
		`swarmsync_last_pass_start_timestamp_seconds{cluster="prod"} 1.8e+09`,
		`swarmsync_leader{cluster="prod"} 1`,
		`swarmsync_leadership_check_errors_total{cluster="prod"} 1`,
		`swarmsync_paused{cluster="prod"} 0`,
		`swarmsync_group_desired_nodes{cluster="prod",group="workers/general"} 4`,
		`swarmsync_group_ready_nodes{cluster="prod",group="managers"} 3`,
		`swarmsync_managers_reachable{cluster="prod"} 3`,
		`swarmsync_managers_quorum{cluster="prod"} 2`,
		`swarmsync_webhook_deliveries_total{cluster="prod",result="bad-signature"} 2`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(out, `group="workers/old"`) {
		t.Errorf("a group gone from the observation still has series")
	}

	testenv.NeedCommands(t, "promtool")
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, b)
	}
}
