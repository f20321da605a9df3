package plan

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// withTargets gives every group of spec a target group and returns the
// observation with a network in which a random part of the running
// instances is registered (some being deregistered already).
func withTargets(r *rand.Rand, spec *schema.Cluster, o Observed) Observed {
	tgOf := func(g string) string {
		return "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/" + slug(g) + "/0"
	}
	spec.Managers.TargetGroups = []string{tgOf(schema.ManagersGroup)}
	n := &providers.Network{Subnets: []providers.Subnet{{ID: "s-1", Zone: "eu-west-1a", VPC: "vpc-1", CIDR: "10.0.0.0/24"}, {ID: "s-2", Zone: "eu-west-1b", VPC: "vpc-1", CIDR: "10.0.1.0/24"}}}
	tgs := map[string]*providers.TargetGroup{}
	groups := []string{schema.ManagersGroup}
	for name, g := range spec.Workers {
		g.TargetGroups = []string{tgOf(schema.WorkerGroupName(name))}
		spec.Workers[name] = g
		groups = append(groups, schema.WorkerGroupName(name))
	}
	slices.Sort(groups)
	for _, g := range groups {
		tgs[g] = &providers.TargetGroup{ARN: tgOf(g), Name: slug(g)}
	}
	for _, in := range o.Instances {
		tg := tgs[in.Group]
		if tg == nil || in.State != providers.StateRunning || r.IntN(3) == 0 {
			continue
		}
		state := "healthy"
		if r.IntN(5) == 0 {
			state = providers.TargetDraining
		}
		tg.Targets = append(tg.Targets, providers.Target{ID: in.ID, State: state})
	}
	for _, g := range groups {
		n.TargetGroups = append(n.TargetGroups, *tgs[g])
	}
	o.Network = n
	return o
}

// TestTargetProperties: on random clusters whose groups have target
// groups, no node is drained, and no instance terminated, while it is
// still registered (its deregistration and the wait for the delay come
// first), and a registration follows the member's label and never targets
// a member that leaves.
func TestTargetProperties(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	checked, dereg, reg := 0, 0, 0
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 13))
		spec := genSpec(r)
		m := genModel(r, spec, now)
		o := withTargets(r, &spec, m.observe())
		p, err := Compute(spec, o, Source{})
		var refused *RefusedError
		if errors.As(err, &refused) {
			continue
		}
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := checkTargets(p, o); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checked++
		if p.Summary[ActionDeregisterTargets] > 0 {
			dereg++
		}
		if p.Summary[ActionRegisterTargets] > 0 {
			reg++
		}
	}
	if checked < 200 || dereg < 20 || reg < 20 {
		t.Fatalf("only %d of 400 random plans were checked, %d deregister and %d register", checked, dereg, reg)
	}
}

func checkTargets(p *Plan, o Observed) error {
	byID := map[string]Step{}
	for _, s := range p.Steps {
		byID[s.ID] = s
	}
	// before reports whether step id transitively depends on a step
	// matching f.
	var before func(id string, f func(Step) bool, seen map[string]bool) bool
	before = func(id string, f func(Step) bool, seen map[string]bool) bool {
		for _, d := range byID[id].DependsOn {
			if seen[d] {
				continue
			}
			seen[d] = true
			if f(byID[d]) || before(d, f, seen) {
				return true
			}
		}
		return false
	}
	registered := map[string][]string{}
	for _, tg := range o.Network.TargetGroups {
		for _, t := range tg.Targets {
			if t.Registered() {
				registered[t.ID] = append(registered[t.ID], tg.ARN)
			}
		}
	}
	leaves := map[string]bool{}
	for _, s := range p.Steps {
		switch s.Action {
		case ActionDrain, ActionTerminate:
			leaves[s.Instance] = true
			tgs := registered[s.Instance]
			if s.Instance == "" || len(tgs) == 0 {
				continue
			}
			awaited := before(s.ID, func(x Step) bool {
				return x.Action == ActionAwaitDeregistered && x.Instance == s.Instance && slices.Equal(x.TargetGroups, tgs) &&
					before(x.ID, func(y Step) bool { return y.Action == ActionDeregisterTargets && y.Instance == s.Instance }, map[string]bool{})
			}, map[string]bool{})
			if !awaited {
				return fmt.Errorf("%s of %s, registered in %v, does not wait for its deregistration (%s)", s.ID, s.Instance, tgs, s.Reason)
			}
		}
	}
	for _, s := range p.Steps {
		if s.Action != ActionRegisterTargets {
			continue
		}
		if leaves[s.Instance] && s.Instance != "" {
			return fmt.Errorf("%s registers %s, which leaves in the same plan", s.ID, s.Instance)
		}
		if s.LaunchStep != "" && !before(s.ID, func(x Step) bool { return x.Action == ActionLabel && x.LaunchStep == s.LaunchStep }, map[string]bool{}) {
			return fmt.Errorf("%s registers the nodes of %s before they are labelled", s.ID, s.LaunchStep)
		}
		for _, tg := range s.TargetGroups {
			if slices.Contains(registered[s.Instance], tg) {
				return fmt.Errorf("%s registers %s in %s again", s.ID, s.Instance, tg)
			}
		}
	}
	return nil
}
