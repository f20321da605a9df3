package plan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

func TestLastActivation(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, cron, now, want string // want "" for none
	}{
		{"weekly: the Sunday before", "@weekly", "2026-05-01T12:00:00Z", "2026-04-26T00:00:00Z"},
		{"weekly: exactly at the activation", "@weekly", "2026-04-26T00:00:00Z", "2026-04-26T00:00:00Z"},
		{"weekly: one second before the activation", "@weekly", "2026-04-25T23:59:59Z", "2026-04-19T00:00:00Z"},
		{"fractions of a second do not matter", "@weekly", "2026-04-26T00:00:00.999Z", "2026-04-26T00:00:00Z"},
		{"cron fields", "0 3 * * SUN", "2026-05-01T12:00:00Z", "2026-04-26T03:00:00Z"},
		{"every five minutes", "*/5 * * * *", "2026-05-01T12:04:59Z", "2026-05-01T12:00:00Z"},
		{"hours then a gap", "* 0-11 * * *", "2026-05-01T23:00:00Z", "2026-05-01T11:59:00Z"},
		{"monthly", "@monthly", "2026-05-01T00:00:00Z", "2026-05-01T00:00:00Z"},
		{"yearly", "@yearly", "2026-05-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"29 February, years back", "0 0 29 2 *", "2027-03-01T00:00:00Z", "2024-02-29T00:00:00Z"},
		{"a zone other than UTC", "CRON_TZ=Europe/Paris 0 3 * * *", "2026-05-01T12:00:00Z", "2026-05-01T01:00:00Z"},
		{"now in another zone", "@daily", "2026-05-01T01:30:00+02:00", "2026-04-30T00:00:00Z"},
		{"@every is anchored at the epoch", "@every 6h", "2026-05-01T13:00:00Z", "2026-05-01T12:00:00Z"},
		{"@every on the dot", "@every 168h", "2026-04-30T00:00:00Z", "2026-04-30T00:00:00Z"},
		{"never within reach", "0 0 30 2 *", "2026-05-01T00:00:00Z", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sched, err := schema.ParseCron(tc.cron)
			if err != nil {
				t.Fatal(err)
			}
			got := lastActivation(sched, at(tc.now))
			want := time.Time{}
			if tc.want != "" {
				want = at(tc.want)
			}
			if !got.Equal(want) {
				t.Errorf("lastActivation(%q, %s) = %s, want %s", tc.cron, tc.now, got, want)
			}
		})
	}
}

// TestLastActivationProperty checks lastActivation with the cron library
// alone: the answer is an activation (the first one after the second
// before it), at or before now, and the first activation after it is after
// now.
func TestLastActivationProperty(t *testing.T) {
	crons := []string{"@weekly", "@daily", "@hourly", "@monthly", "@yearly", "*/7 * * * *", "0 3 * * SUN", "15 2,14 * * MON-FRI", "* 0-11 * * *", "0 0 1,15 * *", "0 0 29 2 *"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(7, 0x707))
	for i := range 5000 {
		expr := crons[r.IntN(len(crons))]
		sched, err := schema.ParseCron(expr)
		if err != nil {
			t.Fatal(err)
		}
		now := base.Add(time.Duration(r.Int64N(int64(3*365*24*time.Hour))) + time.Duration(r.IntN(1e9)))
		got := lastActivation(sched, now)
		if got.IsZero() || got.After(now) || !sched.Next(got.Add(-time.Second)).Equal(got) || !sched.Next(got).After(now) {
			t.Fatalf("case %d: lastActivation(%q, %s) = %s: not the latest activation at or before now (next after it: %s)", i, expr, now, got, sched.Next(got))
		}
	}
}

// rotationStep returns the plan's rotate-join-token step, if any.
func rotationStep(p *Plan) (Step, bool) {
	i := slices.IndexFunc(p.Steps, func(s Step) bool { return s.Action == ActionRotateJoinToken })
	if i < 0 {
		return Step{}, false
	}
	return p.Steps[i], true
}

func TestScheduledRotation(t *testing.T) {
	now := t0.Add(1500 * time.Millisecond) // Friday 2026-05-01 12:00:01.5 UTC
	recorded := func(v string) func(*Observed) {
		return func(o *Observed) {
			o.Swarm.Labels = map[string]string{providers.SwarmLabelJoinTokensRotated: v, "other": "kept"}
		}
	}
	type rot struct {
		Worker, Manager bool
		Record          time.Time
		Reason          []string // fragments
		Deps            int      // await-join steps it waits for
	}
	for _, tc := range []struct {
		name     string
		cron     string
		spec     func(*schema.Cluster)
		observed func(*Observed)
		want     *rot
	}{
		{name: "no schedule", observed: recorded("2020-01-01T00:00:00Z")},
		{
			name: "due: the last activation is after the recorded rotation", cron: "@weekly", observed: recorded("2026-04-19T00:00:00Z"),
			want: &rot{Worker: true, Manager: true, Record: t0.Add(time.Second),
				Reason: []string{`schedule.rotateJoinTokens ("@weekly") was due at 2026-04-26T00:00:00Z`, "the last recorded rotation is 2026-04-19T00:00:00Z"}},
		},
		{name: "not due: rotated after the last activation", cron: "@weekly", observed: recorded("2026-04-26T00:00:00Z")},
		{name: "not due: rotated just now", cron: "@weekly", observed: recorded("2026-05-01T12:00:00Z")},
		{
			name: "never rotated", cron: "0 3 * * SUN",
			want: &rot{Worker: true, Manager: true, Record: t0.Add(time.Second),
				Reason: []string{`schedule.rotateJoinTokens ("0 3 * * SUN") was due at 2026-04-26T03:00:00Z`, "no rotation is recorded on the Swarm"}},
		},
		{
			name: "no record, the swarm created after the last activation: its tokens are new", cron: "@weekly",
			observed: func(o *Observed) { o.Swarm.CreatedAt = time.Date(2026, 4, 27, 8, 0, 0, 0, time.UTC) },
		},
		{
			name: "no record, the swarm created before the last activation", cron: "@weekly",
			observed: func(o *Observed) { o.Swarm.CreatedAt = time.Date(2026, 4, 20, 8, 0, 0, 0, time.UTC) },
			want: &rot{Worker: true, Manager: true, Record: t0.Add(time.Second),
				Reason: []string{"was due at 2026-04-26T00:00:00Z and no rotation is recorded on the Swarm, created at 2026-04-20T08:00:00Z"}},
		},
		{
			name: "a record wins over the creation time", cron: "@weekly",
			observed: func(o *Observed) {
				recorded("2026-04-19T00:00:00Z")(o)
				o.Swarm.CreatedAt = time.Date(2026, 4, 27, 8, 0, 0, 0, time.UTC)
			},
			want: &rot{Worker: true, Manager: true, Record: t0.Add(time.Second), Reason: []string{"the last recorded rotation is 2026-04-19T00:00:00Z"}},
		},
		{
			name: "an unreadable record counts as none", cron: "@daily", observed: recorded("last tuesday"),
			want: &rot{Worker: true, Manager: true, Record: t0.Add(time.Second), Reason: []string{"was due at 2026-05-01T00:00:00Z", "no rotation is recorded"}},
		},
		{
			name: "@every is anchored at the epoch", cron: "@every 6h", observed: recorded("2026-05-01T11:59:59Z"),
			want: &rot{Worker: true, Manager: true, Record: t0.Add(time.Second), Reason: []string{"was due at 2026-05-01T12:00:00Z"}},
		},
		{name: "@every, not due yet", cron: "@every 6h", observed: recorded("2026-05-01T12:00:00Z")},
		{
			name: "inactive swarm: only the bootstrap's own rotation, not the schedule's", cron: "@weekly",
			observed: func(o *Observed) { *o = Observed{Cluster: "prod", TakenAt: now} },
			want:     &rot{Worker: true, Manager: true, Reason: []string{"(joinTokens.rotateAfterJoin)"}, Deps: 4},
		},
		{
			name: "lost quorum: nothing", cron: "@weekly",
			observed: func(o *Observed) {
				for i := range o.Swarm.Nodes {
					if o.Swarm.Nodes[i].Role == providers.RoleManager && !o.Swarm.Nodes[i].Leader {
						o.Swarm.Nodes[i].Reachability = providers.Unreachable
					}
				}
			},
		},
		{
			name: "due while workers join: one rotation of both tokens, after the joins", cron: "@weekly",
			spec: func(c *schema.Cluster) {
				c.Workers["web"] = schema.WorkerGroup{Count: 4, Availability: "active", Instance: c.Workers["web"].Instance, Labels: c.Workers["web"].Labels}
			},
			want: &rot{Worker: true, Manager: true, Record: t0.Add(time.Second), Deps: 1,
				Reason: []string{"the worker join token was used by new nodes (joinTokens.rotateAfterJoin)", "; schedule.rotateJoinTokens"}},
		},
		{
			name: "due while workers join, without rotateAfterJoin: still after the joins", cron: "@weekly",
			spec: func(c *schema.Cluster) {
				c.JoinTokens.RotateAfterJoin = false
				c.Workers["web"] = schema.WorkerGroup{Count: 4, Availability: "active", Instance: c.Workers["web"].Instance, Labels: c.Workers["web"].Labels}
			},
			want: &rot{Worker: true, Manager: true, Record: t0.Add(time.Second), Deps: 1, Reason: []string{"schedule.rotateJoinTokens"}},
		},
		{
			name: "not due while workers join: both tokens, no time of the schedule to record", cron: "@weekly", observed: recorded("2026-04-30T00:00:00Z"),
			spec: func(c *schema.Cluster) {
				c.Workers["web"] = schema.WorkerGroup{Count: 4, Availability: "active", Instance: c.Workers["web"].Instance, Labels: c.Workers["web"].Labels}
			},
			want: &rot{Worker: true, Manager: true, Deps: 1, Reason: []string{"the worker join token was used by new nodes (joinTokens.rotateAfterJoin)", "both tokens are rotated and the rotation is recorded on the Swarm"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			spec.Workers = map[string]schema.WorkerGroup{"web": spec.Workers["web"]}
			spec.Schedule.RotateJoinTokens = tc.cron
			o := steady(spec)
			o.TakenAt = now
			if tc.observed != nil {
				tc.observed(&o)
			}
			if tc.spec != nil {
				tc.spec(&spec)
			}
			p, err := Compute(spec, o, Source{})
			if err != nil {
				t.Fatal(err)
			}
			s, ok := rotationStep(p)
			if tc.want == nil {
				if ok {
					t.Fatalf("unexpected rotation step %+v", s)
				}
				return
			}
			if !ok {
				t.Fatalf("no rotation step; steps %v, notes %q", view(p), p.Notes)
			}
			got := &rot{Worker: s.RotateWorker, Manager: s.RotateManager, Record: s.RecordRotatedAt, Reason: tc.want.Reason}
			for _, d := range s.DependsOn {
				if i := slices.IndexFunc(p.Steps, func(x Step) bool { return x.ID == d }); i >= 0 && p.Steps[i].Action == ActionAwaitJoin {
					got.Deps++
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rotation step (-want +got):\n%s", diff)
			}
			for _, f := range tc.want.Reason {
				if !strings.Contains(s.Reason, f) {
					t.Errorf("reason %q lacks %q", s.Reason, f)
				}
			}
			joins := 0
			for _, x := range p.Steps {
				if x.Action == ActionAwaitJoin {
					joins++
				}
			}
			if got.Deps != joins {
				t.Errorf("the rotation waits for %d of the plan's %d joins", got.Deps, joins)
			}
			if strings.Contains(fmt.Sprint(s), "SWMTK") {
				t.Errorf("the step carries a token: %+v", s)
			}
		})
	}
}

// TestScheduledRotationOnce: once the rotation a plan asks for is recorded
// (as apply records it), the same observation time plans no other, and the
// next one is due only at the next activation.
func TestScheduledRotationOnce(t *testing.T) {
	spec := baseSpec()
	spec.Schedule.RotateJoinTokens = "@daily"
	o := steady(spec)
	for _, tc := range []struct {
		after time.Duration // after t0 (a Friday, 12:00 UTC)
		due   bool
	}{
		{0, true}, // never rotated
		{time.Minute, false},
		{11*time.Hour + 59*time.Minute, false},
		{12 * time.Hour, true}, // midnight
		{12*time.Hour + time.Second, false},
		{35 * time.Hour, false},
		{60 * time.Hour, true}, // two activations later: one rotation
		{61 * time.Hour, false},
	} {
		o.TakenAt = t0.Add(tc.after)
		p, err := Compute(spec, o, Source{})
		if err != nil {
			t.Fatal(err)
		}
		s, ok := rotationStep(p)
		if ok != tc.due {
			t.Fatalf("at %s: rotation planned = %v, want %v (label %v)", o.TakenAt.Format(time.RFC3339), ok, tc.due, o.Swarm.Labels)
		}
		if ok {
			if !s.RecordRotatedAt.Equal(o.TakenAt) {
				t.Fatalf("at %s: the step records %s, want the observation time", o.TakenAt.Format(time.RFC3339), s.RecordRotatedAt)
			}
			o.Swarm.Labels = map[string]string{providers.SwarmLabelJoinTokensRotated: providers.FormatRotated(s.RecordRotatedAt)}
		}
	}
}

// BenchmarkComputeScheduledRotation is BenchmarkCompute's 10000-node case
// with schedule.rotateJoinTokens due (the cron search on top of the plan).
func BenchmarkComputeScheduledRotation(b *testing.B) {
	for _, expr := range []string{"@weekly", "0 0 29 2 *"} {
		spec, o := benchCase(10000)
		spec.Schedule.RotateJoinTokens = expr
		o.Swarm.Labels = map[string]string{providers.SwarmLabelJoinTokensRotated: "2020-01-01T00:00:00Z"}
		b.Run(expr, func(b *testing.B) {
			for b.Loop() {
				p, err := Compute(spec, o, Source{})
				if err != nil {
					b.Fatal(err)
				}
				if _, ok := rotationStep(p); !ok {
					b.Fatal("no rotation planned")
				}
			}
		})
	}
}

// BenchmarkLastActivation is the cron search alone.
func BenchmarkLastActivation(b *testing.B) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, expr := range []string{"@weekly", "*/5 * * * *", "0 0 29 2 *"} {
		sched, err := schema.ParseCron(expr)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(expr, func(b *testing.B) {
			for b.Loop() {
				if lastActivation(sched, now).IsZero() {
					b.Fatal("no activation")
				}
			}
		})
	}
}

// TestRotationAfterInterruptedJoin: with joinTokens.rotateAfterJoin, a
// node created after the watermark (the recorded rotation, else the
// swarm's creation) may hold a token that is still valid, left so by a
// pass that stopped between a join and its rotation: both tokens are
// rotated, nothing of the schedule recorded. The node that created the
// swarm used no token.
func TestRotationAfterInterruptedJoin(t *testing.T) {
	created := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// stamp sets the swarm's creation and record, and the creation times
	// of the nodes: the first manager (the leader) created the swarm, the
	// others joined on 2026-04-02.
	stamp := func(o *Observed, record string) {
		o.Swarm.CreatedAt = created
		if record != "" {
			o.Swarm.Labels = map[string]string{providers.SwarmLabelJoinTokensRotated: record}
		}
		o.Swarm.Nodes = slices.Clone(o.Swarm.Nodes)
		for i := range o.Swarm.Nodes {
			o.Swarm.Nodes[i].CreatedAt = at("2026-04-02T00:00:00Z")
			if o.Swarm.Nodes[i].Leader {
				o.Swarm.Nodes[i].CreatedAt = created.Add(300 * time.Microsecond)
			}
		}
	}
	web := func(o *Observed) *providers.Node {
		for i := range o.Swarm.Nodes {
			if o.Swarm.Nodes[i].Labels[providers.NodeLabelGroup] == "workers/web" {
				return &o.Swarm.Nodes[i]
			}
		}
		t.Fatal("no web node")
		return nil
	}
	type rot struct {
		Record time.Time
		Reason []string // fragments
		Deps   int      // await-join steps it waits for
	}
	for _, tc := range []struct {
		name     string
		spec     func(*schema.Cluster)
		grow     int // web workers the spec adds to the observed ones
		observed func(*Observed)
		want     *rot
	}{
		{name: "every node joined before the recorded rotation", observed: func(o *Observed) { stamp(o, "2026-04-02T00:00:00Z") }},
		{
			name: "a node joined after the recorded rotation: both tokens", observed: func(o *Observed) {
				stamp(o, "2026-04-02T00:00:00Z")
				web(o).CreatedAt = at("2026-04-20T10:00:00.25Z")
			},
			want: &rot{Reason: []string{"1 node(s) joined after the last recorded rotation (2026-04-02T00:00:00Z), the latest " + "n-", " at 2026-04-20T10:00:00.25Z", "(joinTokens.rotateAfterJoin)", "both tokens are rotated"}},
		},
		{
			name: "a record with fractions of a second (the latest node's creation): the node is not newer", observed: func(o *Observed) {
				stamp(o, "2026-04-20T10:00:00.25Z")
				web(o).CreatedAt = at("2026-04-20T10:00:00.25Z")
			},
		},
		{
			name: "a quarter of a second later is newer", observed: func(o *Observed) {
				stamp(o, "2026-04-20T10:00:00.25Z")
				web(o).CreatedAt = at("2026-04-20T10:00:00.5Z")
			},
			want: &rot{Reason: []string{"1 node(s) joined after the last recorded rotation"}},
		},
		{
			name:     "no record: the node that created the swarm used no token, the others did",
			observed: func(o *Observed) { stamp(o, "") },
			want:     &rot{Reason: []string{"joined after the swarm's creation (2026-04-01T00:00:00Z; no rotation is recorded)"}},
		},
		{
			name:     "no record, only the node that created the swarm",
			spec:     func(c *schema.Cluster) { c.Managers.Count = 1; c.Workers = map[string]schema.WorkerGroup{} },
			observed: func(o *Observed) { stamp(o, "") },
		},
		{
			name: "no record: a node created within initNodeSkew of the swarm that is not the earliest still counts",
			spec: func(c *schema.Cluster) {
				c.Managers.Count = 1
				c.Workers["web"] = schema.WorkerGroup{Count: 1, Availability: "active", Instance: c.Workers["web"].Instance, Labels: c.Workers["web"].Labels}
			},
			observed: func(o *Observed) {
				stamp(o, "")
				web(o).CreatedAt = created.Add(90 * time.Millisecond)
			},
			want: &rot{Reason: []string{"1 node(s) joined after the swarm's creation"}},
		},
		{
			name: "no record, and the earliest node is not the swarm's own (created later): it counts",
			spec: func(c *schema.Cluster) { c.Managers.Count = 1; c.Workers = map[string]schema.WorkerGroup{} },
			observed: func(o *Observed) {
				stamp(o, "")
				o.Swarm.Nodes[0].CreatedAt = created.Add(150 * time.Millisecond)
			},
			want: &rot{Reason: []string{"1 node(s) joined after the swarm's creation"}},
		},
		{
			name: "nothing says since when the tokens are valid: nothing planned",
			observed: func(o *Observed) {
				stamp(o, "")
				o.Swarm.CreatedAt = time.Time{}
			},
		},
		{
			name: "nodes without a creation time say nothing",
			observed: func(o *Observed) {
				stamp(o, "2026-04-02T00:00:00Z")
				web(o).CreatedAt = time.Time{}
			},
		},
		{
			name: "without rotateAfterJoin: nothing",
			spec: func(c *schema.Cluster) { c.JoinTokens.RotateAfterJoin = false },
			observed: func(o *Observed) {
				stamp(o, "2026-04-02T00:00:00Z")
				web(o).CreatedAt = at("2026-04-20T10:00:00Z")
			},
		},
		{
			name: "lost quorum: nothing",
			observed: func(o *Observed) {
				stamp(o, "2026-04-02T00:00:00Z")
				web(o).CreatedAt = at("2026-04-20T10:00:00Z")
				for i := range o.Swarm.Nodes {
					if n := &o.Swarm.Nodes[i]; n.Role == providers.RoleManager && !n.Leader {
						n.Reachability, n.State = providers.Unreachable, providers.NodeDown
					}
				}
			},
		},
		{
			name: "with joins in the plan: one rotation after them", grow: 1,
			observed: func(o *Observed) {
				stamp(o, "2026-04-02T00:00:00Z")
				web(o).CreatedAt = at("2026-04-20T10:00:00Z")
			},
			want: &rot{Deps: 1, Reason: []string{"the worker join token was used by new nodes", "; 1 node(s) joined after the last recorded rotation"}},
		},
		{
			name: "with the schedule due: one rotation that records the observation time",
			spec: func(c *schema.Cluster) { c.Schedule.RotateJoinTokens = "@weekly" },
			observed: func(o *Observed) {
				stamp(o, "2026-04-02T00:00:00Z")
				web(o).CreatedAt = at("2026-04-20T10:00:00Z")
			},
			want: &rot{Record: t0, Reason: []string{"1 node(s) joined after the last recorded rotation", "; schedule.rotateJoinTokens (\"@weekly\") was due"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			spec.Workers = map[string]schema.WorkerGroup{"web": spec.Workers["web"]}
			spec.JoinTokens.RotateAfterJoin = true
			if tc.spec != nil {
				tc.spec(&spec)
			}
			o := steady(spec)
			tc.observed(&o)
			if tc.grow > 0 {
				g := spec.Workers["web"]
				g.Count += tc.grow
				spec.Workers = map[string]schema.WorkerGroup{"web": g}
			}
			p, err := Compute(spec, o, Source{})
			if err != nil {
				t.Fatal(err)
			}
			s, ok := rotationStep(p)
			if tc.want == nil {
				if ok {
					t.Fatalf("unexpected rotation step %+v", s)
				}
				return
			}
			if !ok {
				t.Fatalf("no rotation step; steps %v, notes %q", view(p), p.Notes)
			}
			if !s.RotateWorker || !s.RotateManager {
				t.Errorf("rotates worker=%v manager=%v, want both", s.RotateWorker, s.RotateManager)
			}
			got := &rot{Record: s.RecordRotatedAt, Reason: tc.want.Reason}
			for _, d := range s.DependsOn {
				if i := slices.IndexFunc(p.Steps, func(x Step) bool { return x.ID == d }); i >= 0 && p.Steps[i].Action == ActionAwaitJoin {
					got.Deps++
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rotation step (-want +got):\n%s", diff)
			}
			for _, f := range tc.want.Reason {
				if !strings.Contains(s.Reason, f) {
					t.Errorf("reason %q lacks %q", s.Reason, f)
				}
			}
		})
	}
}

// TestRotationAfterJoinOnce: once a rotation is recorded as the provider
// records it (the latest of the step's time, the nodes' creation and the
// record), the next pass plans none, whether swarmsync's clock is behind
// the manager's (nodes newer than the observation) or not; a node that
// joins afterwards is seen.
func TestRotationAfterJoinOnce(t *testing.T) {
	spec := baseSpec()
	spec.JoinTokens.RotateAfterJoin = true
	for _, skew := range []time.Duration{0, 7 * time.Minute, -7 * time.Minute} {
		t.Run(fmt.Sprint("manager clock ahead by ", skew), func(t *testing.T) {
			o := steady(spec)
			o.Swarm.CreatedAt = t0.Add(-30 * 24 * time.Hour)
			o.Swarm.Nodes = slices.Clone(o.Swarm.Nodes)
			for i := range o.Swarm.Nodes {
				o.Swarm.Nodes[i].CreatedAt = o.Swarm.CreatedAt.Add(time.Duration(i) * time.Hour)
			}
			// A node that joined just now, on the manager's clock.
			last := &o.Swarm.Nodes[len(o.Swarm.Nodes)-1]
			last.CreatedAt = o.TakenAt.Add(skew + 123*time.Millisecond)
			record := func(s Step) {
				at := s.RecordRotatedAt
				for _, n := range o.Swarm.Nodes {
					if n.CreatedAt.After(at) {
						at = n.CreatedAt
					}
				}
				if prev, ok := o.Swarm.JoinTokensRotated(); !ok || at.After(prev) {
					o.Swarm.Labels = map[string]string{providers.SwarmLabelJoinTokensRotated: providers.FormatRotated(at)}
				}
			}
			for pass, want := range []bool{true, false, false} {
				p, err := Compute(spec, o, Source{})
				if err != nil {
					t.Fatal(err)
				}
				s, ok := rotationStep(p)
				if ok != want {
					t.Fatalf("pass %d: rotation planned = %v, want %v (label %v)", pass+1, ok, want, o.Swarm.Labels)
				}
				if ok {
					record(s)
				}
				o.TakenAt = o.TakenAt.Add(time.Minute)
			}
			// A node that joins after the rotation (its creation after the
			// record, on the same clock) is seen on the next pass.
			rec, _ := o.Swarm.JoinTokensRotated()
			last.CreatedAt = rec.Add(time.Nanosecond)
			p, err := Compute(spec, o, Source{})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := rotationStep(p); !ok {
				t.Fatal("a node that joined after the recorded rotation is not seen")
			}
		})
	}
}

// BenchmarkComputeRotationAfterJoin is BenchmarkCompute's 10000-node case
// with every node stamped with its creation and one joined after the
// recorded rotation (the watermark check on top of the plan).
func BenchmarkComputeRotationAfterJoin(b *testing.B) {
	spec, o := benchCase(10000)
	spec.JoinTokens.RotateAfterJoin = true
	o.Swarm.CreatedAt = o.TakenAt.Add(-90 * 24 * time.Hour)
	o.Swarm.Labels = map[string]string{providers.SwarmLabelJoinTokensRotated: providers.FormatRotated(o.TakenAt.Add(-24 * time.Hour))}
	o.Swarm.Nodes = slices.Clone(o.Swarm.Nodes)
	for i := range o.Swarm.Nodes {
		o.Swarm.Nodes[i].CreatedAt = o.Swarm.CreatedAt.Add(time.Duration(i) * time.Minute)
	}
	o.Swarm.Nodes[len(o.Swarm.Nodes)/2].CreatedAt = o.TakenAt.Add(-time.Hour)
	for b.Loop() {
		p, err := Compute(spec, o, Source{})
		if err != nil {
			b.Fatal(err)
		}
		if s, ok := rotationStep(p); !ok || !strings.Contains(s.Reason, "joined after the last recorded rotation") {
			b.Fatal("no rotation for the node that joined after the record")
		}
	}
}
