package observe

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// Take observes cluster once: one Instances call on cloud, one Observe call
// on swarm. Instances that do not carry the cluster's tag (a provider
// should not return them) are kept apart in Unowned, so the planner never
// touches them. The result is in canonical order, stamped with now (UTC).
func Take(ctx context.Context, cloud providers.Cloud, swarm providers.Swarm, cluster string, now time.Time) (plan.Observed, error) {
	if cluster == "" {
		return plan.Observed{}, fmt.Errorf("failed to observe: no cluster name given")
	}
	insts, err := cloud.Instances(ctx, cluster)
	if err != nil {
		return plan.Observed{}, fmt.Errorf("failed to list the instances of cluster %s: %w", cluster, err)
	}
	st, err := swarm.Observe(ctx)
	if err != nil {
		return plan.Observed{}, fmt.Errorf("failed to observe the swarm of cluster %s: %w", cluster, err)
	}
	o := plan.Observed{FormatVersion: plan.FormatVersion, Cluster: cluster, TakenAt: now.UTC(), Swarm: st}
	for _, in := range insts {
		if in.Cluster == cluster {
			o.Instances = append(o.Instances, in)
		} else {
			o.Unowned = append(o.Unowned, in)
		}
	}
	return o.Canonical(), nil
}
