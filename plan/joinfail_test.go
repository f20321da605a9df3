package plan

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// steadyModel returns a model of a cluster in the shape of spec: every
// group at its count, up to date, Ready and labelled.
func steadyModel(spec schema.Cluster, now time.Time) *model {
	m := newModel(spec, now)
	m.swarm, m.created = true, now.Add(-30*24*time.Hour)
	add := func(group string, role providers.Role, n int) {
		for i := range n {
			in := m.addInst(group, ConfigDigest(spec, group), []string{"a", "b", "c"}[i%3], now.Add(-time.Duration(100+i)*time.Hour), false)
			nd := m.addNode(in.id, role)
			labels, avail := wanted(spec, group)
			nd.labels, nd.avail = maps.Clone(labels), avail
			nd.drained = avail == providers.AvailabilityDrain
			nd.created, nd.viaToken = in.launched.Add(time.Minute), true
			if role == providers.RoleManager && i == 0 {
				nd.leader, nd.viaToken = true, false
			}
		}
	}
	add(schema.ManagersGroup, providers.RoleManager, spec.Managers.Count)
	for _, name := range slices.Sorted(maps.Keys(spec.Workers)) {
		add(schema.WorkerGroupName(name), providers.RoleWorker, spec.Workers[name].Count)
	}
	m.truthKnown = true
	return m
}

// TestJoinFailuresStopLaunching: a group whose new machines never join (a
// bad image, a broken network) is grown or rolled, and apply runs every
// minute (or after waiting joinTimeout for the joins) for 30 passes, under
// both failureActions. A launch never leaves more live instances in the
// group (never-joined ones included) than its count plus its surge
// (checkLaunchBound), every plan names the instances it keeps and launches
// nothing in a group it stops (checkStopped), and the loop stops
// launching: the last 20 passes launch nothing in the group.
func TestJoinFailuresStopLaunching(t *testing.T) {
	const cases = 1000
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	stats := map[string]int{}
	for i := range cases {
		r := rand.New(rand.NewPCG(uint64(i), 0x10f))
		spec := genSpec(r)
		spec.Update.FailureAction = []string{"pause", "continue"}[r.IntN(2)]
		spec.Update.DownGrace = schema.Duration{Duration: 5 * time.Minute}
		m := steadyModel(spec, base)
		// The group that fails, and what the spec asks of it.
		groups := []string{schema.ManagersGroup}
		for _, name := range slices.Sorted(maps.Keys(spec.Workers)) {
			groups = append(groups, schema.WorkerGroupName(name))
		}
		g := groups[r.IntN(len(groups))]
		switch roll := r.IntN(3) == 0; {
		case g == schema.ManagersGroup && (roll || spec.Managers.Count == 7):
			spec.Managers.Instance.Image += "-new"
			stats["managers-rolled"]++
		case g == schema.ManagersGroup:
			spec.Managers.Count += 2
			stats["managers-grown"]++
		case roll && spec.Workers[g[len("workers/"):]].Count > 0:
			w := spec.Workers[g[len("workers/"):]]
			w.Instance.Image += "-new"
			spec.Workers[g[len("workers/"):]] = w
			stats["workers-rolled"]++
		default:
			w := spec.Workers[g[len("workers/"):]]
			w.Count += 1 + r.IntN(40)
			spec.Workers[g[len("workers/"):]] = w
			stats["workers-grown"]++
		}
		m.spec = spec
		m.failJoin = map[string]bool{g: true}
		desc := func() string {
			b, _ := MarshalObserved(m.observe())
			return fmt.Sprintf("case %d, group %s fails to join\nspec: %+v\nobserved: %s", i, g, spec, b)
		}
		lastLaunch := 0
		for pass := 1; pass <= 30; pass++ {
			m.lapse()
			p, err := Compute(spec, m.observe(), Source{})
			var re *RefusedError
			if errors.As(err, &re) {
				stats["refused"]++
				break
			}
			if err != nil {
				t.Fatalf("pass %d: %v\n%s", pass, err, desc())
			}
			if err := checkStopped(p, m); err != nil {
				t.Fatalf("pass %d: %v\n%s", pass, err, desc())
			}
			if slices.ContainsFunc(p.Steps, func(s Step) bool { return s.Action == ActionLaunch && s.Group == g }) {
				lastLaunch = pass
			}
			if err := m.run(p, r); err != nil {
				js, _ := MarshalPlan(p)
				t.Fatalf("pass %d: %v\n%s\nplan: %s", pass, err, desc(), js)
			}
			m.now = m.now.Add(max(time.Minute, m.waited))
		}
		if lastLaunch > 10 {
			t.Fatalf("group %s still launched in pass %d of 30\n%s", g, lastLaunch, desc())
		}
		stats[fmt.Sprintf("last-launch-in-pass-%d", lastLaunch)]++
		live := 0
		for _, in := range m.insts {
			if in.live && in.group == g {
				live++
			}
		}
		want, _ := m.desired(g)
		if bound := want + map[bool]int{true: 1, false: spec.Update.MaxSurge}[g == schema.ManagersGroup]; live > bound {
			t.Fatalf("group %s ends with %d live instances, more than its count plus surge %d\n%s", g, live, bound, desc())
		}
	}
	t.Logf("%d cases: %v", cases, stats)
}
