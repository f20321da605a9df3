package observe

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// NetworkQuery returns what the network observation of desired covers: on
// aws, every subnet and security group the groups name, the managed
// security group, every target group and the load balancer. ok is false
// when there is nothing to observe (the local provider).
func NetworkQuery(desired schema.Cluster) (q providers.NetworkQuery, ok bool) {
	if desired.Provider.AWS == nil {
		return providers.NetworkQuery{}, false
	}
	q.Cluster = desired.Name
	add := func(inst schema.Instance, tgs []string) {
		q.Subnets = append(q.Subnets, inst.Subnets...)
		q.SecurityGroups = append(q.SecurityGroups, inst.SecurityGroups...)
		q.TargetGroups = append(q.TargetGroups, tgs...)
	}
	add(desired.Managers.Instance, desired.Managers.TargetGroups)
	for _, g := range desired.Workers {
		add(g.Instance, g.TargetGroups)
	}
	for _, l := range []*[]string{&q.Subnets, &q.SecurityGroups, &q.TargetGroups} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	q.OwnedSecurityGroups = desired.Provider.AWS.ManagedSecurityGroup
	if desired.LoadBalancer != nil {
		q.LoadBalancer = desired.LoadBalancer.ARN
	}
	return q, true
}

// TakeFor is Take plus what desired's environment needs: the network
// (when the cloud can observe it and the spec is on aws) and, when the
// spec names a load balancer, the Swarm's ingress-published ports.
func TakeFor(ctx context.Context, cloud providers.Cloud, swarm providers.Swarm, desired schema.Cluster, now time.Time) (plan.Observed, error) {
	o, err := Take(ctx, cloud, swarm, desired.Name, now)
	if err != nil {
		return o, err
	}
	q, ok := NetworkQuery(desired)
	nw, can := cloud.(providers.NetworkObserver)
	if !ok || !can {
		return o, nil
	}
	n, err := nw.Network(ctx, q)
	if err != nil {
		return plan.Observed{}, fmt.Errorf("failed to observe the network of cluster %s: %w", desired.Name, err)
	}
	o.Network = &n
	if q.LoadBalancer != "" && o.Swarm.Active {
		po, ok := swarm.(providers.PortObserver)
		if !ok {
			return plan.Observed{}, fmt.Errorf("failed to observe the published ports of cluster %s: the Swarm endpoint cannot list services", desired.Name)
		}
		ports, err := po.PublishedPorts(ctx)
		if err != nil {
			return plan.Observed{}, fmt.Errorf("failed to observe the published ports of cluster %s: %w", desired.Name, err)
		}
		if ports == nil {
			ports = []providers.PublishedPort{}
		}
		o.Ingress = &plan.Ingress{Ports: ports}
	}
	return o.Canonical(), nil
}
