package docker

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// TasksMoved reports whether every desired-running task of the services
// that had tasks on nodeID now runs on another node. WaitDrained only says
// the node is empty; this says the workload is back up elsewhere, which is
// what must hold before the node's instance may go.
func (s *Swarm) TasksMoved(ctx context.Context, nodeID string) (bool, error) {
	onNode, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("node", nodeID))})
	if err != nil {
		return false, fmt.Errorf("failed to list the tasks of node %s: %w", nodeID, classify(err))
	}
	services := map[string]bool{}
	for _, t := range onNode {
		services[t.ServiceID] = true
	}
	for svc := range services {
		tasks, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
			filters.Arg("service", svc), filters.Arg("desired-state", "running"))})
		if err != nil {
			return false, fmt.Errorf("failed to list the tasks of service %s: %w", svc, classify(err))
		}
		for _, t := range tasks {
			if t.NodeID == nodeID || t.Status.State != swarm.TaskStateRunning {
				return false, nil
			}
		}
	}
	return true, nil
}
