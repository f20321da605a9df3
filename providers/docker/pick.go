package docker

import (
	"context"
	"fmt"

	"github.com/swarmsync/swarmsync/providers"
)

// PickEndpoint chooses the endpoint to act through among a cluster's
// manager endpoints: the leader when one answers as leader; else the first
// (a swarm without a leader, or one not initialised yet: observing it tells
// which); else, with no endpoints at all, providers.NoSwarm (nothing
// launched yet, so the planner bootstraps).
func PickEndpoint(ctx context.Context, endpoints []string, opt ...Option) (providers.Swarm, error) {
	if len(endpoints) == 0 {
		return providers.NoSwarm{}, nil
	}
	if sw, err := FindLeader(ctx, endpoints, opt...); err == nil {
		return sw, nil
	}
	sw, err := New(endpoints[0], opt...)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to manager endpoint %s: %w", endpoints[0], err)
	}
	return sw, nil
}
