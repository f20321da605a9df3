package plan

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestMatch(t *testing.T) {
	insts := []providers.Instance{
		{ID: "i-1", PrivateIP: "10.0.0.1", State: providers.StateRunning},
		{ID: "i-2", PrivateIP: "10.0.0.2", State: providers.StateRunning},
		{ID: "i-3", PrivateIP: "10.0.0.3", State: providers.StateRunning},
		{ID: "i-4", PrivateIP: "10.0.0.4", State: providers.StateTerminated},
	}
	label := func(id string) map[string]string { return map[string]string{providers.EngineLabelInstance: id} }
	for _, tc := range []struct {
		name     string
		nodes    []providers.Node
		wantInst []int
		wantHow  []string
	}{
		{"engine label", []providers.Node{{ID: "n", EngineLabels: label("i-2"), Addr: "10.0.0.1"}}, []int{1}, []string{MatchByLabel}},
		{"label naming a gone instance is not matched by address", []providers.Node{{ID: "n", EngineLabels: label("i-9"), Addr: "10.0.0.1"}}, []int{-1}, []string{""}},
		{"manager address host part", []providers.Node{{ID: "n", Role: providers.RoleManager, ManagerAddr: "10.0.0.3:2377", Addr: "10.0.0.1"}}, []int{2}, []string{MatchByAddr}},
		{"node address", []providers.Node{{ID: "n", Addr: "10.0.0.2"}}, []int{1}, []string{MatchByAddr}},
		{"address of a terminated instance", []providers.Node{{ID: "n", Addr: "10.0.0.4"}}, []int{-1}, []string{""}},
		{"label wins over an address claim", []providers.Node{{ID: "a", Addr: "10.0.0.1"}, {ID: "b", EngineLabels: label("i-1")}}, []int{-1, 0}, []string{"", MatchByLabel}},
		{"a live node wins an address over a Down one", []providers.Node{
			{ID: "a", Addr: "10.0.0.2", State: providers.NodeDown},
			{ID: "b", Addr: "10.0.0.2", State: providers.NodeReady},
		}, []int{-1, 1}, []string{"", MatchByAddr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotInst, gotHow := Match(insts, tc.nodes)
			if d := cmp.Diff(tc.wantInst, gotInst); d != "" {
				t.Errorf("instances (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantHow, gotHow); d != "" {
				t.Errorf("how (-want +got):\n%s", d)
			}
		})
	}
}

func TestPickVictims(t *testing.T) {
	mk := func(id, zone string, ageHours int, outdated, down bool) *member {
		m := &member{inst: &providers.Instance{ID: id, Zone: zone, LaunchedAt: t0.Add(-time.Duration(ageHours) * time.Hour)}, outdated: outdated}
		m.node = &providers.Node{ID: "n-" + id, State: providers.NodeReady}
		if down {
			m.node.State = providers.NodeDown
		}
		return m
	}
	for _, tc := range []struct {
		name string
		ms   []*member
		n    int
		want []string
	}{
		{"out of date first, then Down, then zone, then oldest", []*member{
			mk("a1", "a", 10, false, false), mk("a2", "a", 5, false, false), mk("b1", "b", 50, false, false),
			mk("c1", "c", 1, false, true), mk("b2", "b", 1, true, false),
		}, 5, []string{"b2", "c1", "a1", "a2", "b1"}},
		{"zone with most members, counting earlier picks as gone", []*member{
			mk("a1", "a", 1, false, false), mk("a2", "a", 2, false, false), mk("a3", "a", 3, false, false),
			mk("b1", "b", 9, false, false), mk("b2", "b", 8, false, false),
		}, 3, []string{"a3", "a2", "b1"}},
		{"ties go to the oldest, then the smallest id", []*member{
			mk("x2", "a", 4, false, false), mk("x1", "a", 4, false, false), mk("x3", "a", 5, false, false),
		}, 2, []string{"x3", "x1"}},
		{"n larger than the pool", []*member{mk("a", "a", 1, false, false)}, 3, []string{"a"}},
		{"zero", []*member{mk("a", "a", 1, false, false)}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, m := range pickVictims(tc.ms, tc.n, nil) {
				got = append(got, m.id())
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("victims (-want +got):\n%s", d)
			}
		})
	}
}

func baseSpec() schema.Cluster {
	return schema.Cluster{
		Name:     "prod",
		Provider: schema.Provider{AWS: &schema.AWSProvider{Region: "eu-west-1"}},
		Managers: schema.Managers{Count: 3, Availability: "drain", Instance: schema.Instance{Type: "t3.medium", Image: "ami-1", Subnets: []string{"s-a", "s-b"}, SecurityGroups: []string{"sg-1", "sg-2"}}},
		Workers: map[string]schema.WorkerGroup{
			"web": {Count: 2, Availability: "active", Instance: schema.Instance{Type: "m5.large", Image: "ami-1"}, Labels: map[string]string{"tier": "web"}},
		},
		Update:     schema.Update{Parallelism: 1, MaxSurge: 1, JoinTimeout: schema.Duration{Duration: 10 * time.Minute}, DownGrace: schema.Duration{Duration: 5 * time.Minute}},
		Safety:     schema.Safety{MaxRemovalsPerApply: 5},
		JoinTokens: schema.JoinTokens{RotateAfterJoin: true},
	}
}

func TestConfigDigest(t *testing.T) {
	base := baseSpec()
	d0 := ConfigDigest(base, "managers")
	if len(d0) != 64 {
		t.Fatalf("digest %q is not a sha256 hex", d0)
	}
	same := func(name string, f func(*schema.Cluster)) {
		c := baseSpec()
		f(&c)
		if got := ConfigDigest(c, "managers"); got != d0 {
			t.Errorf("%s changed the digest", name)
		}
	}
	differs := func(name string, f func(*schema.Cluster)) {
		c := baseSpec()
		f(&c)
		if got := ConfigDigest(c, "managers"); got == d0 {
			t.Errorf("%s did not change the digest", name)
		}
	}
	same("count", func(c *schema.Cluster) { c.Managers.Count = 5 })
	same("labels", func(c *schema.Cluster) { c.Managers.Labels = map[string]string{"a": "b"} })
	same("availability", func(c *schema.Cluster) { c.Managers.Availability = "active" })
	same("subnet order", func(c *schema.Cluster) { c.Managers.Instance.Subnets = []string{"s-b", "s-a"} })
	same("security group order", func(c *schema.Cluster) { c.Managers.Instance.SecurityGroups = []string{"sg-2", "sg-1"} })
	same("a worker group's image", func(c *schema.Cluster) {
		c.Workers["web"] = schema.WorkerGroup{Instance: schema.Instance{Image: "ami-9"}}
	})
	differs("image", func(c *schema.Cluster) { c.Managers.Instance.Image = "ami-2" })
	differs("type", func(c *schema.Cluster) { c.Managers.Instance.Type = "t3.large" })
	differs("subnets", func(c *schema.Cluster) { c.Managers.Instance.Subnets = []string{"s-a"} })
	differs("security groups", func(c *schema.Cluster) { c.Managers.Instance.SecurityGroups = nil })
	differs("profile", func(c *schema.Cluster) { c.Managers.Instance.InstanceProfile = "p" })
	differs("key", func(c *schema.Cluster) { c.Managers.Instance.KeyName = "k" })
	differs("user data", func(c *schema.Cluster) { c.UserData = "#!/bin/sh" })
	differs("region", func(c *schema.Cluster) { c.Provider.AWS = &schema.AWSProvider{Region: "us-east-1"} })
	differs("provider", func(c *schema.Cluster) {
		c.Provider = schema.Provider{Local: &schema.LocalProvider{Subnet: "10.1.0.0/24"}}
	})
	if ConfigDigest(base, "workers/web") == d0 {
		t.Errorf("managers and workers share a digest")
	}
	if got := ConfigDigest(base, "workers/nope"); got != "" {
		t.Errorf("undeclared group digest = %q, want empty", got)
	}
}

func sampleObserved() Observed {
	return Observed{
		Cluster: "prod", TakenAt: t0,
		Instances: []providers.Instance{
			{ID: "i-b", Cluster: "prod", Group: "managers", State: providers.StateRunning, PrivateIP: "10.0.0.2", LaunchedAt: t0.Add(-time.Hour)},
			{ID: "i-a", Cluster: "prod", Group: "managers", State: providers.StateRunning, PrivateIP: "10.0.0.1", LaunchedAt: t0.Add(-2 * time.Hour)},
		},
		Swarm: providers.SwarmState{Active: true, Nodes: []providers.Node{
			{ID: "n-b", Hostname: "b", Role: providers.RoleManager, Availability: providers.AvailabilityActive, State: providers.NodeReady, Reachability: providers.Reachable, Version: 3, EngineLabels: map[string]string{providers.EngineLabelInstance: "i-b"}},
			{ID: "n-a", Hostname: "a", Role: providers.RoleManager, Availability: providers.AvailabilityActive, State: providers.NodeReady, Reachability: providers.Reachable, Leader: true, Version: 7, EngineLabels: map[string]string{providers.EngineLabelInstance: "i-a"}},
		}},
	}
}

func TestObservedCodec(t *testing.T) {
	o := sampleObserved()
	b, err := MarshalObserved(o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("}\n")) || !bytes.Contains(b, []byte("\n  \"cluster\": \"prod\"")) {
		t.Errorf("not indented JSON ending in a newline:\n%s", b)
	}
	if bytes.Index(b, []byte(`"i-a"`)) > bytes.Index(b, []byte(`"i-b"`)) || bytes.Index(b, []byte(`"n-a"`)) > bytes.Index(b, []byte(`"n-b"`)) {
		t.Errorf("instances and nodes are not in canonical order:\n%s", b)
	}
	back, err := UnmarshalObserved(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(o.Canonical(), back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	b2, _ := MarshalObserved(back)
	if !bytes.Equal(b, b2) {
		t.Errorf("re-encoding is not byte-identical")
	}
	if _, err := UnmarshalObserved([]byte(`{"format_version": 99}`)); err == nil || !strings.Contains(err.Error(), "upgrade swarmsync") {
		t.Errorf("newer format: err = %v", err)
	}
	if _, err := UnmarshalObserved([]byte(`{"format_version": 1, "instances": 3}`)); err == nil || !strings.Contains(err.Error(), "failed to decode observation") {
		t.Errorf("bad JSON: err = %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	fp := sampleObserved().Fingerprint()
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q is not a sha256 hex", fp)
	}
	for _, tc := range []struct {
		name    string
		change  func(*Observed)
		changes bool
	}{
		{"taken later", func(o *Observed) { o.TakenAt = o.TakenAt.Add(time.Hour) }, false},
		{"other order", func(o *Observed) {
			o.Instances[0], o.Instances[1] = o.Instances[1], o.Instances[0]
			o.Swarm.Nodes[0], o.Swarm.Nodes[1] = o.Swarm.Nodes[1], o.Swarm.Nodes[0]
		}, false},
		{"node version and hostname", func(o *Observed) { o.Swarm.Nodes[0].Version = 99; o.Swarm.Nodes[0].Hostname = "x" }, false},
		{"launch time", func(o *Observed) { o.Instances[0].LaunchedAt = t0 }, true},
		{"instance state", func(o *Observed) { o.Instances[0].State = providers.StateStopped }, true},
		{"config tag", func(o *Observed) { o.Instances[0].Config = "x" }, true},
		{"leader", func(o *Observed) { o.Swarm.Nodes[1].Leader = false; o.Swarm.Nodes[0].Leader = true }, true},
		{"node label", func(o *Observed) { o.Swarm.Nodes[0].Labels = map[string]string{"a": "b"} }, true},
		{"reachability", func(o *Observed) { o.Swarm.Nodes[0].Reachability = providers.Unreachable }, true},
		{"an unowned instance", func(o *Observed) { o.Unowned = []providers.Instance{{ID: "i-x"}} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sampleObserved()
			tc.change(&o)
			if got := o.Fingerprint(); (got != fp) != tc.changes {
				t.Errorf("fingerprint changed = %v, want %v", got != fp, tc.changes)
			}
		})
	}
}

// steady returns an observation of spec in its desired state.
func steady(spec schema.Cluster) Observed {
	m := newModel(spec, t0)
	m.swarm = true
	add := func(group string, role providers.Role, n int) {
		for i := range n {
			in := m.addInst(group, ConfigDigest(spec, group), []string{"a", "b", "c"}[i%3], t0.Add(-time.Duration(100+i)*time.Hour), false)
			nd := m.addNode(in.id, role)
			labels, avail := wanted(spec, group)
			nd.labels, nd.avail = labels, avail
			if role == providers.RoleManager && i == 0 {
				nd.leader = true
			}
		}
	}
	add(schema.ManagersGroup, providers.RoleManager, spec.Managers.Count)
	for name, g := range spec.Workers {
		add(schema.WorkerGroupName(name), providers.RoleWorker, g.Count)
	}
	return m.observe()
}

type stepView struct {
	Action Action
	Target string
}

func view(p *Plan) []stepView {
	var out []stepView
	for _, s := range p.Steps {
		t := s.Instance
		if t == "" {
			t = s.Node
		}
		if s.Action == ActionLaunch {
			t = fmt.Sprintf("%s x%d init=%v", s.Group, s.Count, s.Init)
		}
		out = append(out, stepView{s.Action, t})
	}
	return out
}

func TestCompute(t *testing.T) {
	empty := Observed{Cluster: "prod", TakenAt: t0}
	for _, tc := range []struct {
		name     string
		spec     func(*schema.Cluster)
		observed func(schema.Cluster) Observed
		want     []stepView
		note     string
	}{
		{
			name:     "bootstrap: the first manager initialises, the others join one at a time",
			spec:     func(c *schema.Cluster) { c.Workers["web"] = schema.WorkerGroup{Count: 2} },
			observed: func(schema.Cluster) Observed { return empty },
			want: []stepView{
				{ActionLaunch, "managers x1 init=true"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionLaunch, "managers x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionLaunch, "managers x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionLaunch, "workers/web x2 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionRotateJoinToken, ""},
			},
		},
		{
			name:     "steady state: no steps",
			observed: steady,
		},
		{
			name: "managers 3 to 5: two joins, one at a time",
			spec: func(c *schema.Cluster) { c.Managers.Count = 5 },
			observed: func(c schema.Cluster) Observed {
				c.Managers.Count = 3
				return steady(c)
			},
			want: []stepView{
				{ActionLaunch, "managers x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionLaunch, "managers x1 init=false"}, {ActionAwaitJoin, ""}, {ActionLabel, ""},
				{ActionRotateJoinToken, ""},
			},
		},
		{
			name: "managers 5 to 3: the leader stays, demote before remove before terminate",
			observed: func(c schema.Cluster) Observed {
				c.Managers.Count = 5
				return steady(c)
			},
			want: []stepView{
				// Managers are drained already: their tasks are awaited (none).
				{ActionAwaitDrained, "i-00010"}, {ActionDemote, "i-00010"}, {ActionRemoveNode, "i-00010"}, {ActionTerminate, "i-00010"},
				{ActionAwaitDrained, "i-00013"}, {ActionDemote, "i-00013"}, {ActionRemoveNode, "i-00013"}, {ActionTerminate, "i-00013"},
			},
		},
		{
			name: "quorum lost: no steps, a recovery note",
			observed: func(c schema.Cluster) Observed {
				o := steady(c)
				for i := range o.Swarm.Nodes {
					if o.Swarm.Nodes[i].Role == providers.RoleManager && !o.Swarm.Nodes[i].Leader {
						o.Swarm.Nodes[i].Reachability = providers.Unreachable
						o.Swarm.Nodes[i].State = providers.NodeDown
					}
				}
				return o
			},
			note: "docker swarm init --force-new-cluster",
		},
		{
			name: "a removed group is kept without prune",
			spec: func(c *schema.Cluster) { delete(c.Workers, "web") },
			observed: func(c schema.Cluster) Observed {
				return steady(baseSpec())
			},
			note: "Set safety.prune: true to remove them",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			p, err := Compute(spec, tc.observed(spec), Source{Commit: "abc"})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, view(p)); d != "" {
				t.Errorf("steps (-want +got):\n%s", d)
			}
			if tc.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", p.Notes, tc.note)
			}
			total := 0
			for _, n := range p.Summary {
				total += n
			}
			if total != len(p.Steps) || p.Observation.Fingerprint == "" {
				t.Errorf("summary %v does not count %d steps, or no fingerprint", p.Summary, len(p.Steps))
			}
		})
	}
}

func TestComputeRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		spec      func(*schema.Cluster)
		wantField string
	}{
		{"more removals than the limit", func(c *schema.Cluster) {
			c.Workers["web"] = schema.WorkerGroup{Count: 1}
			c.Safety.MaxRemovalsPerApply = 3
		}, "safety.maxRemovalsPerApply"},
		{"emptying a group", func(c *schema.Cluster) { c.Workers["web"] = schema.WorkerGroup{Count: 0} }, "safety.allowEmpty"},
		{"pruning more than the limit", func(c *schema.Cluster) {
			delete(c.Workers, "web")
			c.Safety.Prune = true
			c.Safety.MaxRemovalsPerApply = 4
		}, "safety.maxRemovalsPerApply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := baseSpec()
			old.Workers["web"] = schema.WorkerGroup{Count: 5, Instance: old.Workers["web"].Instance}
			spec := baseSpec()
			tc.spec(&spec)
			_, err := Compute(spec, steady(old), Source{})
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RefusedError", err)
			}
			if re.Field != tc.wantField || !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("refused by %q (%v), want %q", re.Field, err, tc.wantField)
			}
		})
	}
}

// TestManagersWalk walks managers 1→3→5→7→5→3→1 on the model: every step
// keeps quorum and every pass converges.
func TestManagersWalk(t *testing.T) {
	spec := baseSpec()
	spec.Managers.Count = 1
	m := newModel(spec, t0)
	for _, count := range []int{1, 3, 5, 7, 5, 3, 1} {
		spec.Managers.Count = count
		m.spec = spec
		p, err := Compute(spec, m.observe(), Source{})
		if err != nil {
			t.Fatalf("to %d: %v", count, err)
		}
		if err := m.run(p, nil); err != nil {
			t.Fatalf("to %d: %v", count, err)
		}
		if err := m.converged(); err != nil {
			t.Fatalf("to %d: %v", count, err)
		}
		if members, _ := m.raft(); members != count {
			t.Fatalf("to %d: %d raft members", count, members)
		}
	}
}

// TestDeterminism: the same inputs give byte-identical JSON, whatever the
// order the providers listed instances and nodes in.
func TestDeterminism(t *testing.T) {
	for i := range 300 {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		spec := genSpec(r)
		o := genModel(r, spec, t0).observe()
		p1, err1 := Compute(spec, o, Source{Commit: "c"})
		shuffled := o
		shuffled.Instances = append([]providers.Instance(nil), o.Instances...)
		shuffled.Swarm.Nodes = append([]providers.Node(nil), o.Swarm.Nodes...)
		r.Shuffle(len(shuffled.Instances), func(a, b int) {
			shuffled.Instances[a], shuffled.Instances[b] = shuffled.Instances[b], shuffled.Instances[a]
		})
		r.Shuffle(len(shuffled.Swarm.Nodes), func(a, b int) {
			shuffled.Swarm.Nodes[a], shuffled.Swarm.Nodes[b] = shuffled.Swarm.Nodes[b], shuffled.Swarm.Nodes[a]
		})
		p2, err2 := Compute(spec, shuffled, Source{Commit: "c"})
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("case %d: errors differ: %v / %v", i, err1, err2)
		}
		if err1 != nil {
			if err1.Error() != err2.Error() {
				t.Fatalf("case %d: errors differ: %v / %v", i, err1, err2)
			}
			continue
		}
		b1, _ := MarshalPlan(p1)
		b2, _ := MarshalPlan(p2)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("case %d: plans differ:\n%s\n%s", i, b1, b2)
		}
		back, err := UnmarshalPlan(b1)
		if err != nil {
			t.Fatal(err)
		}
		b3, _ := MarshalPlan(back)
		if !bytes.Equal(b1, b3) {
			t.Fatalf("case %d: plan JSON does not round-trip", i)
		}
	}
}
