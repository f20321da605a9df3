package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// deregistrationMargin is added to a target group's deregistration delay
// to bound the wait for its targets to be gone.
const deregistrationMargin = time.Minute

// environment returns the cloud's Environment, or an error naming the step
// that needs it.
func (e *executor) environment(s plan.Step) (providers.Environment, error) {
	env, ok := e.deps.Cloud.(providers.Environment)
	if !ok {
		return nil, fmt.Errorf("step %s (%s) needs a cloud that manages security groups and load balancers (provider aws)", s.ID, s.Action)
	}
	return env, nil
}

// environmentStep runs the steps on the AWS environment; ok is false for
// other actions.
func (e *executor) environmentStep(ctx context.Context, s plan.Step) (ok bool, err error) {
	switch s.Action {
	case plan.ActionCreateSecurityGroup, plan.ActionAuthorizeIngress, plan.ActionRegisterTargets, plan.ActionDeregisterTargets,
		plan.ActionAwaitDeregistered, plan.ActionCreateListener, plan.ActionDeleteListener:
	default:
		return false, nil
	}
	env, err := e.environment(s)
	if err != nil {
		return true, err
	}
	cluster := e.plan.Desired.Name
	switch s.Action {
	case plan.ActionCreateSecurityGroup:
		_, err = env.CreateManagedSecurityGroup(ctx, cluster, plan.ManagedSecurityGroupName(cluster), s.VPC)
	case plan.ActionAuthorizeIngress:
		err = e.authorize(ctx, env, s)
	case plan.ActionRegisterTargets, plan.ActionDeregisterTargets:
		var ids []string
		if ids, err = e.targetInstances(s); err != nil {
			return true, err
		}
		for _, tg := range s.TargetGroups {
			if s.Action == plan.ActionRegisterTargets {
				err = env.RegisterTargets(ctx, tg, ids)
			} else {
				err = env.DeregisterTargets(ctx, tg, ids)
			}
			if err != nil {
				return true, err
			}
		}
	case plan.ActionAwaitDeregistered:
		err = e.awaitDeregistered(ctx, env, s)
	case plan.ActionCreateListener:
		if e.plan.Desired.LoadBalancer == nil {
			return true, fmt.Errorf("step %s: the spec names no load balancer", s.ID)
		}
		err = env.CreateListener(ctx, providers.ListenerRequest{Cluster: cluster, LoadBalancer: e.plan.Desired.LoadBalancer.ARN,
			TargetGroupName: s.TargetGroupName, Protocol: s.Protocol, Port: s.Port, Targets: s.Targets})
	case plan.ActionDeleteListener:
		tg := ""
		if len(s.TargetGroups) > 0 {
			tg = s.TargetGroups[0]
		}
		err = env.DeleteListener(ctx, cluster, s.Listener, tg)
	}
	return true, err
}

// authorize adds the step's rules to the managed group; a source "self"
// is the group itself.
func (e *executor) authorize(ctx context.Context, env providers.Environment, s plan.Step) error {
	cluster := e.plan.Desired.Name
	id, err := env.ManagedSecurityGroup(ctx, cluster)
	if err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("failed to authorize ingress: the managed security group of cluster %q does not exist", cluster)
	}
	rules := slices.Clone(s.Rules)
	for i := range rules {
		if rules[i].SourceGroup == plan.ManagedSecurityGroupSelf {
			rules[i].SourceGroup = id
		}
	}
	return env.AuthorizeIngress(ctx, cluster, rules)
}

// awaitDeregistered waits until the step's instances are no longer
// targets of its target groups: their deregistration delay is over.
// Bounded by the longest delay plus a margin.
func (e *executor) awaitDeregistered(ctx context.Context, env providers.Environment, s plan.Step) error {
	ids, err := e.targetInstances(s)
	if err != nil {
		return err
	}
	var longest time.Duration
	for _, tg := range s.TargetGroups {
		d, err := env.DeregistrationDelay(ctx, tg)
		if err != nil {
			return err
		}
		longest = max(longest, d)
	}
	pending := slices.Clone(s.TargetGroups)
	err = e.poll(ctx, longest+deregistrationMargin, func() (bool, error) {
		var still []string
		for _, tg := range pending {
			ts, err := env.Targets(ctx, tg)
			if err != nil {
				return false, err
			}
			if slices.ContainsFunc(ts, func(t providers.Target) bool { return slices.Contains(ids, t.ID) }) {
				still = append(still, tg)
			}
		}
		pending = still
		return len(pending) == 0, nil
	})
	if errors.Is(err, errTimeout) {
		return fmt.Errorf("%v still in target groups %v after their deregistration delay (%s) and %s more", ids, pending, longest, deregistrationMargin)
	}
	return err
}

// managedSecurityGroup is the id of the cluster's managed security group
// when the spec asks for one (launches attach it), "" otherwise.
func (e *executor) managedSecurityGroup(ctx context.Context) (string, error) {
	aws := e.plan.Desired.Provider.AWS
	if aws == nil || !aws.ManagedSecurityGroup {
		return "", nil
	}
	env, ok := e.deps.Cloud.(providers.Environment)
	if !ok {
		return "", errors.New("provider.aws.managedSecurityGroup needs a cloud that manages security groups")
	}
	id, err := env.ManagedSecurityGroup(ctx, e.plan.Desired.Name)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", fmt.Errorf("the managed security group of cluster %q does not exist (provider.aws.managedSecurityGroup): plan again", e.plan.Desired.Name)
	}
	return id, nil
}

// beforeSwarm reports whether s runs before any Swarm exists, so that no
// leader can be checked: the launch that initialises the Swarm, and the
// managed security group steps it depends on in the same plan (both are
// safe to repeat: the launch by its token, the group found by its tags).
func (e *executor) beforeSwarm(s plan.Step) bool {
	switch s.Action {
	case plan.ActionLaunch:
		return s.Init
	case plan.ActionCreateSecurityGroup, plan.ActionAuthorizeIngress:
		return slices.ContainsFunc(e.plan.Steps, func(x plan.Step) bool { return x.Action == plan.ActionLaunch && x.Init })
	}
	return false
}
