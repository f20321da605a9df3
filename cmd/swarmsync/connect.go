package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/aws"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/providers/local"
	"github.com/swarmsync/swarmsync/schema"
)

// localStateEnv overrides the local provider's state directory.
const localStateEnv = "SWARMSYNC_LOCAL_STATE"

// connect builds the Cloud named by the cluster's provider and the Swarm
// endpoint to act through (DOCKER_HOST when set; with the local provider and
// no DOCKER_HOST, the leader among the cluster's managers).
func connect(ctx context.Context, a *app, c schema.Cluster) (providers.Cloud, providers.Swarm, error) {
	switch c.Provider.Kind() {
	case "local":
		dir := os.Getenv(localStateEnv)
		if dir == "" {
			dir = local.DefaultStateDir
		}
		cloud, err := local.New(local.Config{StateDir: dir, Subnet: c.Provider.Local.Subnet, Logger: warnLogger(a)})
		if err != nil {
			return nil, nil, fmt.Errorf("failed to set up the local provider: %w", err)
		}
		sw, err := localSwarm(ctx, cloud, c.Name)
		if err != nil {
			return nil, nil, err
		}
		return cloud, sw, nil
	case "aws":
		cloud, err := aws.New(ctx, aws.Options{Region: c.Provider.AWS.Region})
		if err != nil {
			return nil, nil, fmt.Errorf("failed to set up the aws provider: %w", err)
		}
		// On AWS the endpoint is the standard Docker environment: on a
		// manager, its own socket; elsewhere, DOCKER_HOST.
		sw, err := envSwarm()
		if err != nil {
			return nil, nil, err
		}
		return cloud, sw, nil
	}
	return nil, nil, fmt.Errorf("provider %q is not available in this build", c.Provider.Kind())
}

// localSwarm picks the Swarm endpoint for a local cluster: DOCKER_HOST when
// set, else the leader among the cluster's manager sockets, else the oldest
// manager's socket (a swarm without a leader, or not yet initialised), else
// no endpoint at all (nothing launched yet).
func localSwarm(ctx context.Context, cloud *local.Cloud, cluster string) (providers.Swarm, error) {
	if os.Getenv("DOCKER_HOST") != "" {
		return envSwarm()
	}
	eps, err := cloud.ManagerEndpoints(ctx, cluster)
	if err != nil {
		return nil, fmt.Errorf("failed to list the managers of cluster %s: %w", cluster, err)
	}
	return docker.PickEndpoint(ctx, eps)
}

// closeSwarm releases an endpoint's connections, when it holds any.
func closeSwarm(sw providers.Swarm) {
	if c, ok := sw.(io.Closer); ok {
		_ = c.Close()
	}
}

// envSwarm is the endpoint of the standard Docker environment
// (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH; the local socket when
// unset).
func envSwarm() (providers.Swarm, error) {
	sw, err := docker.New("")
	if err != nil {
		return nil, fmt.Errorf("failed to connect to DOCKER_HOST: %w", err)
	}
	return sw, nil
}

// dialerFor returns how apply reaches the first manager of a Swarm it
// creates, for clouds that can expose a machine's engine.
func dialerFor(cloud providers.Cloud) apply.SwarmDialer {
	if lc, ok := cloud.(*local.Cloud); ok {
		return localDialer{cloud: lc}
	}
	return nil
}

// leaderFinderFor returns how a one-shot apply finds the new leader after
// it demoted its own endpoint's node: with the local provider and no
// DOCKER_HOST it can reach every manager; otherwise (an endpoint on one
// manager) it cannot, and the new leader finishes the plan.
func leaderFinderFor(cloud providers.Cloud, cluster string) func(context.Context) (providers.Swarm, error) {
	lc, ok := cloud.(*local.Cloud)
	if !ok || os.Getenv("DOCKER_HOST") != "" {
		return nil
	}
	return func(ctx context.Context) (providers.Swarm, error) { return localSwarm(ctx, lc, cluster) }
}

// localDialer reaches a local machine's engine through its socket.
type localDialer struct{ cloud *local.Cloud }

var _ apply.SwarmDialer = localDialer{}

// Dial connects to the instance's docker socket.
func (d localDialer) Dial(ctx context.Context, inst providers.Instance) (providers.Swarm, error) {
	sw, err := docker.New(d.cloud.Endpoint(inst.ID))
	if err != nil {
		return nil, fmt.Errorf("failed to connect to the engine of %s: %w", inst.ID, err)
	}
	return sw, nil
}

// The Docker endpoint also reports whether a drained node's tasks run
// elsewhere, so await-drained waits for the workload, not just the node.
var _ apply.TaskMover = (*docker.Swarm)(nil)
