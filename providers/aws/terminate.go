package aws

import (
	"context"
	"fmt"
	"slices"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/swarmsync/swarmsync/providers"
)

// verifyChunk is how many ids one ownership check filters on.
const verifyChunk = 200

// Terminate ends ids after checking, with DescribeInstances, that every one
// exists and carries swarmsync:cluster=cluster. If any does not, it refuses
// them all and terminates nothing. Instances already terminated are
// skipped. TerminateInstances carries at most 1,000 ids per call.
func (c *Cloud) Terminate(ctx context.Context, cluster string, ids []string) error {
	if err := checkCluster(cluster); err != nil {
		return fmt.Errorf("failed to terminate instances: %w", err)
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil
	}
	found := map[string]providers.Instance{}
	for chunk := range slices.Chunk(ids, verifyChunk) {
		got, _, err := c.describe(ctx, &ec2.DescribeInstancesInput{
			Filters:    []types.Filter{{Name: awssdk.String("instance-id"), Values: chunk}},
			MaxResults: awssdk.Int32(PageSize),
		})
		if err != nil {
			return fmt.Errorf("failed to verify ownership of instances before terminating (DescribeInstances): %w", err)
		}
		for _, in := range got {
			found[in.ID] = in
		}
	}
	var missing, foreign, live []string
	for _, id := range ids {
		in, ok := found[id]
		switch {
		case !ok:
			missing = append(missing, id)
		case in.Tags[providers.TagCluster] != cluster:
			foreign = append(foreign, id)
		case in.State != providers.StateTerminated:
			live = append(live, id)
		}
	}
	if len(missing) > 0 || len(foreign) > 0 {
		var why []string
		if len(foreign) > 0 {
			why = append(why, fmt.Sprintf("not tagged %s=%s: %s", providers.TagCluster, cluster, strings.Join(foreign, ", ")))
		}
		if len(missing) > 0 {
			why = append(why, fmt.Sprintf("not found: %s", strings.Join(missing, ", ")))
		}
		return fmt.Errorf("refusing to terminate instances of cluster %q (nothing was terminated): %s", cluster, strings.Join(why, "; "))
	}
	for chunk := range slices.Chunk(live, TerminateBatch) {
		if _, err := c.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: chunk}); err != nil {
			return fmt.Errorf("failed to terminate %d instances of cluster %q (TerminateInstances): %w", len(chunk), cluster, err)
		}
		c.log.InfoContext(ctx, "terminated instances", "cluster", cluster, "count", len(chunk))
	}
	return nil
}
