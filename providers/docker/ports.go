package docker

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmsync/swarmsync/providers"
)

var _ providers.PortObserver = (*Swarm)(nil)

// PublishedPorts lists the ports the services publish in ingress mode (the
// routing mesh answers them on every node), with one ServiceList call. A
// port two services would publish is listed once.
func (s *Swarm) PublishedPorts(ctx context.Context) ([]providers.PublishedPort, error) {
	list, err := s.cli.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to list services: %w", classify(err))
	}
	out := []providers.PublishedPort{}
	for _, svc := range list {
		for _, p := range svc.Endpoint.Ports {
			if p.PublishMode != swarm.PortConfigPublishModeIngress || p.PublishedPort == 0 {
				continue
			}
			pp := providers.PublishedPort{Port: int(p.PublishedPort), Protocol: string(p.Protocol), Service: svc.Spec.Name}
			if !slices.ContainsFunc(out, func(x providers.PublishedPort) bool { return x.Port == pp.Port && x.Protocol == pp.Protocol }) {
				out = append(out, pp)
			}
		}
	}
	slices.SortFunc(out, func(a, b providers.PublishedPort) int {
		if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
	return out, nil
}
