package plan

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

func TestDisruptionWindows(t *testing.T) {
	win := func(cron string, d time.Duration) schema.Window {
		return schema.Window{Cron: cron, Duration: schema.Duration{Duration: d}}
	}
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	sat2 := win("0 2 * * SAT", 4*time.Hour) // 2026-05-02 is a Saturday
	for _, tc := range []struct {
		name     string
		ws       []schema.Window
		now      string
		wantOpen bool
		wantNext string
	}{
		{"no windows: always open", nil, "2026-05-01T12:00:00Z", true, ""},
		{"before the window", []schema.Window{sat2}, "2026-05-01T12:00:00Z", false, "2026-05-02T02:00:00Z"},
		{"at the opening instant", []schema.Window{sat2}, "2026-05-02T02:00:00Z", true, ""},
		{"inside", []schema.Window{sat2}, "2026-05-02T05:59:59Z", true, ""},
		{"at the closing instant: closed, next week", []schema.Window{sat2}, "2026-05-02T06:00:00Z", false, "2026-05-09T02:00:00Z"},
		{"the zone of now does not matter", []schema.Window{sat2}, "2026-05-02T04:00:00+09:00", false, "2026-05-02T02:00:00Z"},
		{"a window longer than a day, across midnight", []schema.Window{win("0 22 * * FRI", 30*time.Hour)}, "2026-05-02T23:30:00Z", true, ""},
		{"the nearest of two windows", []schema.Window{sat2, win("30 1 * * *", time.Hour)}, "2026-05-01T12:00:00Z", false, "2026-05-02T01:30:00Z"},
		{"one of two open", []schema.Window{sat2, win("@daily", time.Hour)}, "2026-05-01T00:59:00Z", true, ""},
		{"@weekly opens Sunday 00:00", []schema.Window{win("@weekly", time.Hour)}, "2026-05-01T12:00:00Z", false, "2026-05-03T00:00:00Z"},
		{"@every is anchored at the epoch", []schema.Window{win("@every 6h", time.Hour)}, "2026-05-01T12:30:00Z", true, ""},
		{"@every closed: the next multiple", []schema.Window{win("@every 6h", time.Hour)}, "2026-05-01T13:00:00Z", false, "2026-05-01T18:00:00Z"},
		{"@every as long as its period: always open", []schema.Window{win("@every 1h", time.Hour)}, "2026-05-01T13:59:59Z", true, ""},
		{"a cron that never fires", []schema.Window{win("0 0 30 2 *", time.Hour)}, "2026-05-01T12:00:00Z", false, ""},
		{"explicit zone", []schema.Window{win("CRON_TZ=UTC 0 13 * * *", time.Hour)}, "2026-05-01T12:00:00Z", false, "2026-05-01T13:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := disruptionWindows(tc.ws, at(tc.now))
			if err != nil {
				t.Fatal(err)
			}
			var next string
			if !got.next.IsZero() {
				next = got.next.Format(time.RFC3339)
			}
			if d := cmp.Diff([]any{tc.wantOpen, tc.wantNext}, []any{got.open, next}); d != "" {
				t.Errorf("open, next (-want +got):\n%s", d)
			}
		})
	}
	for _, tc := range []struct {
		name string
		w    schema.Window
		want string
	}{
		{"bad cron", win("0 2 * *", time.Hour), "schedule.disruptionWindows[0].cron"},
		{"zero duration", win("@daily", 0), "schedule.disruptionWindows[0].duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			spec.Schedule.DisruptionWindows = []schema.Window{tc.w}
			_, err := Compute(spec, steady(spec), Source{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// TestComputeOutsideWindow: outside every disruption window the plan keeps
// what takes nothing away (scale-up, labels, self-healing of what is
// already dead) and holds the rest back with a note naming the next window.
func TestComputeOutsideWindow(t *testing.T) {
	closed := []schema.Window{{Cron: "0 2 * * SAT", Duration: schema.Duration{Duration: 4 * time.Hour}}} // t0 is Friday 12:00 UTC
	open := []schema.Window{{Cron: "0 11 * * FRI", Duration: schema.Duration{Duration: 4 * time.Hour}}}
	// broken: the web workers are out of date, one more is wanted, one of
	// them is Down for good, a Down node's instance is gone and an
	// instance never joined.
	broken := func(c schema.Cluster) Observed {
		c.Workers = maps.Clone(c.Workers)
		c.Workers["web"] = schema.WorkerGroup{Count: 2, Availability: "active", Instance: schema.Instance{Type: "m5.large", Image: "ami-0"}, Labels: map[string]string{"tier": "web"}}
		o := steady(c)
		o.Swarm.Nodes = append(o.Swarm.Nodes, providers.Node{ID: "n-gone", Role: providers.RoleWorker, State: providers.NodeDown,
			Labels: map[string]string{providers.NodeLabelGroup: "workers/web"}, EngineLabels: map[string]string{providers.EngineLabelInstance: "i-gone"}})
		for i := range o.Swarm.Nodes { // Down for good: for an hour, past update.downGrace
			if n := &o.Swarm.Nodes[i]; n.Labels[providers.NodeLabelGroup] == "workers/web" {
				n.State, n.DownSince = providers.NodeDown, t0.Add(-time.Hour)
				break
			}
		}
		o.Instances = append(o.Instances, providers.Instance{ID: "i-never", Cluster: "prod", Group: "workers/web", State: providers.StateRunning,
			Config: ConfigDigest(c, "workers/web"), LaunchedAt: t0.Add(-time.Hour)})
		return o
	}
	withSpec := func(ws []schema.Window) schema.Cluster {
		spec := baseSpec()
		spec.Workers["web"] = schema.WorkerGroup{Count: 3, Availability: "active", Instance: schema.Instance{Type: "m5.large", Image: "ami-1"}, Labels: map[string]string{"tier": "web"}}
		spec.Schedule.DisruptionWindows = ws
		return spec
	}
	t.Run("closed", func(t *testing.T) {
		spec := withSpec(closed)
		p, err := Compute(spec, broken(spec), Source{})
		if err != nil {
			t.Fatal(err)
		}
		want := []stepView{
			{ActionRemoveNode, "n-gone"},
			{ActionTerminate, "i-never"},
			{ActionLaunch, "workers/web x2 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
			{ActionTerminate, "i-00010"}, {ActionRemoveNode, "i-00010"}, // Down for good
			{ActionRotateJoinToken, ""},
		}
		if d := cmp.Diff(want, view(p)); d != "" {
			t.Errorf("steps (-want +got):\n%s", d)
		}
		note := "1 disruptive change(s) (drain, replace, scale-down, prune, demote, remove, terminate of a running member) are held back: no disruption window (schedule.disruptionWindows) is open at 2026-05-01T12:00:00Z; the next window opens at 2026-05-02T02:00:00Z."
		if d := cmp.Diff([]string{note}, p.Notes); d != "" {
			t.Errorf("notes (-want +got):\n%s", d)
		}
	})
	t.Run("open", func(t *testing.T) {
		spec := withSpec(open)
		p, err := Compute(spec, broken(spec), Source{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Summary[ActionDrain] != 1 || p.Summary[ActionTerminate] != 3 || len(p.Notes) != 0 {
			t.Errorf("inside a window the Ready out-of-date worker is replaced too: summary %v, notes %q", p.Summary, p.Notes)
		}
	})
	t.Run("a stray manager waits for the window", func(t *testing.T) {
		spec := withSpec(closed)
		spec.Workers["web"] = schema.WorkerGroup{Count: 2, Availability: "active", Instance: schema.Instance{Type: "m5.large", Image: "ami-1"}, Labels: map[string]string{"tier": "web"}}
		o := steady(spec)
		for i := range o.Swarm.Nodes {
			if n := &o.Swarm.Nodes[i]; n.Labels[providers.NodeLabelGroup] == "workers/web" {
				n.Role, n.Reachability, n.ManagerAddr = providers.RoleManager, providers.Reachable, n.Addr+":2377"
				break
			}
		}
		p, err := Compute(spec, o, Source{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Steps) != 0 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "1 disruptive change(s)") {
			t.Errorf("steps %v, notes %q: want none and one hold note", view(p), p.Notes)
		}
	})
}
