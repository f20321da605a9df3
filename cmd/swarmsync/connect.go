package main

import (
	"context"
	"fmt"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// connect builds the Cloud named by the cluster's provider and the Swarm
// endpoint to act through (DOCKER_HOST when set; with the local provider and
// no DOCKER_HOST, the leader among the cluster's managers).
func connect(ctx context.Context, a *app, c schema.Cluster) (providers.Cloud, providers.Swarm, error) {
	return nil, nil, fmt.Errorf("provider %q is not available in this build", c.Provider.Kind())
}
