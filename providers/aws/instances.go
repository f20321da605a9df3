package aws

import (
	"context"
	"fmt"
	"sort"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/swarmsync/swarmsync/providers"
)

// checkCluster refuses names that would not select exactly one cluster
// (EC2 filter values treat * and ? as wildcards).
func checkCluster(cluster string) error {
	if cluster == "" {
		return fmt.Errorf("cluster name is empty: set the spec's name")
	}
	if strings.ContainsAny(cluster, "*?\\") {
		return fmt.Errorf("cluster name %q contains a wildcard character (*, ? or \\): use a DNS label", cluster)
	}
	return nil
}

// Instances lists every instance tagged swarmsync:cluster=cluster, in any
// state (terminated ones stay visible on EC2 for about an hour), with one
// filtered DescribeInstances paginated at 1,000: ⌈N/1000⌉ requests.
func (c *Cloud) Instances(ctx context.Context, cluster string) ([]providers.Instance, error) {
	if err := checkCluster(cluster); err != nil {
		return nil, fmt.Errorf("failed to list instances: %w", err)
	}
	in := &ec2.DescribeInstancesInput{
		Filters:    []types.Filter{{Name: awssdk.String("tag:" + providers.TagCluster), Values: []string{cluster}}},
		MaxResults: awssdk.Int32(PageSize),
	}
	out, pages, err := c.describe(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("failed to list instances of cluster %q (DescribeInstances): %w", cluster, err)
	}
	c.log.DebugContext(ctx, "observed instances", "cluster", cluster, "instances", len(out), "pages", pages)
	return out, nil
}

// describe pages through DescribeInstances, deduplicating by id (an
// instance may move between pages while we read), sorted by id.
func (c *Cloud) describe(ctx context.Context, in *ec2.DescribeInstancesInput) ([]providers.Instance, int, error) {
	seen := map[string]bool{}
	var out []providers.Instance
	pages := 0
	p := ec2.NewDescribeInstancesPaginator(c.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, pages, err
		}
		pages++
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				inst := toInstance(i)
				if inst.ID == "" || seen[inst.ID] {
					continue
				}
				seen[inst.ID] = true
				out = append(out, inst)
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, pages, nil
}

// toInstance maps an EC2 instance to the provider-neutral Instance.
func toInstance(i types.Instance) providers.Instance {
	tags := make(map[string]string, len(i.Tags))
	for _, t := range i.Tags {
		tags[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
	}
	inst := providers.Instance{
		ID:        awssdk.ToString(i.InstanceId),
		Cluster:   tags[providers.TagCluster],
		Group:     tags[providers.TagGroup],
		Config:    tags[providers.TagConfig],
		PrivateIP: awssdk.ToString(i.PrivateIpAddress),
		Tags:      tags,
	}
	if i.State != nil {
		inst.State = providers.InstanceState(i.State.Name)
	}
	if i.Placement != nil {
		inst.Zone = awssdk.ToString(i.Placement.AvailabilityZone)
	}
	if i.LaunchTime != nil {
		inst.LaunchedAt = i.LaunchTime.UTC()
	}
	return inst
}
