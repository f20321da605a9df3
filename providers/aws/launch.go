package aws

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"sort"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/swarmsync/swarmsync/providers"
)

// batch is one RunInstances call: Count instances in Subnet, the Part-th
// call (from 0) of that subnet.
type batch struct {
	Subnet string
	Count  int
	Part   int
}

// spread assigns count instances round-robin over subnets (instance k goes
// to subnets[k mod len]) and returns the batches of each subnet that gets
// any: one per LaunchBatch instances. Without subnets the batches use the
// account's default subnet.
func spread(count int, subnets []string) []batch {
	if len(subnets) == 0 {
		return chunks("", count)
	}
	var out []batch
	for i, s := range subnets {
		n := count / len(subnets)
		if i < count%len(subnets) {
			n++
		}
		out = append(out, chunks(s, n)...)
	}
	return out
}

// chunks splits n instances of one subnet into calls of at most LaunchBatch.
func chunks(subnet string, n int) []batch {
	var out []batch
	for part := 0; n > 0; part++ {
		c := min(n, LaunchBatch)
		out = append(out, batch{Subnet: subnet, Count: c, Part: part})
		n -= c
	}
	return out
}

// ClientToken derives the RunInstances ClientToken for one subnet batch of
// a launch: deterministic in (request token, subnet), 64 ASCII characters
// at most, so a re-run of the same plan step never launches twice.
func ClientToken(requestToken, subnet string) string {
	h := sha256.Sum256([]byte(requestToken + "\x00" + subnet))
	return "swarmsync-" + hex.EncodeToString(h[:])[:48]
}

// batchToken is the ClientToken of a batch: ClientToken of its subnet for
// the first (the only one up to LaunchBatch instances), and one per further
// part.
func batchToken(requestToken string, b batch) string {
	if b.Part == 0 {
		return ClientToken(requestToken, b.Subnet)
	}
	return ClientToken(requestToken, fmt.Sprintf("%s\x00%d", b.Subnet, b.Part))
}

// checkLaunch validates a request and returns the tags to apply at launch.
func checkLaunch(req providers.LaunchRequest) (map[string]string, error) {
	if err := checkCluster(req.Cluster); err != nil {
		return nil, err
	}
	switch {
	case req.Group == "":
		return nil, fmt.Errorf("launch request for cluster %q has no group", req.Cluster)
	case req.Count < 1:
		return nil, fmt.Errorf("launch request for %s has count %d: it must be at least 1", req.Group, req.Count)
	case req.Image == "":
		return nil, fmt.Errorf("launch request for %s has no image: set instance.image in the spec", req.Group)
	case req.InstanceType == "":
		return nil, fmt.Errorf("launch request for %s has no instance type: set instance.type in the spec", req.Group)
	case req.IdempotencyToken == "":
		return nil, fmt.Errorf("launch request for %s has no idempotency token: launches must be derived from a plan step", req.Group)
	}
	seen := map[string]bool{}
	for _, s := range req.Subnets {
		if s == "" || seen[s] {
			return nil, fmt.Errorf("launch request for %s lists subnet %q twice or empty: list each subnet once", req.Group, s)
		}
		seen[s] = true
	}
	tags := maps.Clone(req.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	for k, want := range map[string]string{providers.TagCluster: req.Cluster, providers.TagGroup: req.Group} {
		if got, ok := tags[k]; ok && got != want {
			return nil, fmt.Errorf("launch request tag %s=%q contradicts the request's %q", k, got, want)
		}
		tags[k] = want
	}
	return tags, nil
}

// Launch starts req.Count instances spread round-robin over req.Subnets,
// one RunInstances call per subnet and LaunchBatch instances, tagged at launch (instance and volume).
// Each call carries ClientToken(req.IdempotencyToken, subnet), so repeating
// a launch returns the same instances. On failure it returns the instances
// launched by the calls that succeeded, with the error.
func (c *Cloud) Launch(ctx context.Context, req providers.LaunchRequest) ([]providers.Instance, error) {
	tags, err := checkLaunch(req)
	if err != nil {
		return nil, fmt.Errorf("failed to launch instances: %w", err)
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ec2Tags := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		ec2Tags = append(ec2Tags, types.Tag{Key: awssdk.String(k), Value: awssdk.String(tags[k])})
	}
	var userData *string
	if len(req.UserData) > 0 {
		userData = awssdk.String(base64.StdEncoding.EncodeToString(req.UserData))
	}
	var out []providers.Instance
	for _, b := range spread(req.Count, req.Subnets) {
		in := &ec2.RunInstancesInput{
			ImageId:      awssdk.String(req.Image),
			InstanceType: types.InstanceType(req.InstanceType),
			MinCount:     awssdk.Int32(int32(b.Count)),
			MaxCount:     awssdk.Int32(int32(b.Count)),
			ClientToken:  awssdk.String(batchToken(req.IdempotencyToken, b)),
			UserData:     userData,
			TagSpecifications: []types.TagSpecification{
				{ResourceType: types.ResourceTypeInstance, Tags: ec2Tags},
				{ResourceType: types.ResourceTypeVolume, Tags: ec2Tags},
			},
		}
		if b.Subnet != "" {
			in.SubnetId = awssdk.String(b.Subnet)
		}
		if len(req.SecurityGroups) > 0 {
			in.SecurityGroupIds = req.SecurityGroups
		}
		if req.InstanceProfile != "" {
			in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: awssdk.String(req.InstanceProfile)}
		}
		if req.KeyName != "" {
			in.KeyName = awssdk.String(req.KeyName)
		}
		if err := c.limiter.waitInstances(ctx, b.Count); err != nil {
			return out, fmt.Errorf("failed to launch %d instances of %s: %w", b.Count, req.Group, err)
		}
		res, err := c.client.RunInstances(ctx, in)
		if err != nil {
			return out, fmt.Errorf("failed to launch %d instances of %s in subnet %q (RunInstances): %w", b.Count, req.Group, b.Subnet, err)
		}
		for _, i := range res.Instances {
			inst := toInstance(i)
			if len(i.Tags) == 0 { // not every endpoint echoes launch tags
				inst.Tags = maps.Clone(tags)
				inst.Cluster, inst.Group, inst.Config = req.Cluster, req.Group, tags[providers.TagConfig]
			}
			out = append(out, inst)
		}
		c.log.InfoContext(ctx, "launched instances", "cluster", req.Cluster, "group", req.Group,
			"subnet", b.Subnet, "count", len(res.Instances), "reservation", awssdk.ToString(res.ReservationId))
	}
	return out, nil
}
