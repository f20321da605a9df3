package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/swarmsync/swarmsync/providers"
)

var _ providers.NetworkObserver = (*Cloud)(nil)

// tagBatch is the most resources one ELBv2 DescribeTags call takes.
const tagBatch = 20

// Network observes what q names: one filtered DescribeSubnets, one
// filtered DescribeSecurityGroups per selector (the spec's ids, the
// cluster's tag), and on ELBv2 one DescribeLoadBalancers, one
// DescribeListeners, ⌈L/20⌉ DescribeTags for L listeners, one
// DescribeTargetGroups and one DescribeTargetHealth per target group.
func (c *Cloud) Network(ctx context.Context, q providers.NetworkQuery) (providers.Network, error) {
	if err := checkCluster(q.Cluster); err != nil {
		return providers.Network{}, fmt.Errorf("failed to observe the network: %w", err)
	}
	var n providers.Network
	var err error
	if len(q.Subnets) > 0 {
		if n.Subnets, err = c.subnets(ctx, q.Subnets); err != nil {
			return providers.Network{}, fmt.Errorf("failed to describe subnets (DescribeSubnets): %w", err)
		}
	}
	var sgFilters [][]ec2types.Filter
	if len(q.SecurityGroups) > 0 {
		sgFilters = append(sgFilters, []ec2types.Filter{{Name: awssdk.String("group-id"), Values: q.SecurityGroups}})
	}
	if q.OwnedSecurityGroups {
		sgFilters = append(sgFilters, []ec2types.Filter{{Name: awssdk.String("tag:" + providers.TagCluster), Values: []string{q.Cluster}}})
	}
	for _, f := range sgFilters {
		sgs, err := c.securityGroups(ctx, f)
		if err != nil {
			return providers.Network{}, fmt.Errorf("failed to describe security groups (DescribeSecurityGroups): %w", err)
		}
		for _, g := range sgs {
			if !slices.ContainsFunc(n.SecurityGroups, func(x providers.SecurityGroup) bool { return x.ID == g.ID }) {
				n.SecurityGroups = append(n.SecurityGroups, g)
			}
		}
	}
	slices.SortFunc(n.SecurityGroups, func(a, b providers.SecurityGroup) int { return strings.Compare(a.ID, b.ID) })
	tgs := slices.Clone(q.TargetGroups)
	if q.LoadBalancer != "" {
		if n.LoadBalancer, err = c.loadBalancer(ctx, q.LoadBalancer); err != nil {
			return providers.Network{}, err
		}
		if n.LoadBalancer != nil {
			for _, l := range n.LoadBalancer.Listeners {
				if l.Tags[providers.TagCluster] == q.Cluster && l.TargetGroup != "" {
					tgs = append(tgs, l.TargetGroup)
				}
			}
		}
	}
	slices.Sort(tgs)
	tgs = slices.Compact(tgs)
	if len(tgs) > 0 {
		if n.TargetGroups, err = c.targetGroups(ctx, tgs); err != nil {
			return providers.Network{}, err
		}
	}
	return n, nil
}

func (c *Cloud) subnets(ctx context.Context, ids []string) ([]providers.Subnet, error) {
	var out []providers.Subnet
	p := ec2.NewDescribeSubnetsPaginator(c.client, &ec2.DescribeSubnetsInput{
		Filters: []ec2types.Filter{{Name: awssdk.String("subnet-id"), Values: ids}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range page.Subnets {
			out = append(out, providers.Subnet{ID: awssdk.ToString(s.SubnetId), Zone: awssdk.ToString(s.AvailabilityZone),
				VPC: awssdk.ToString(s.VpcId), CIDR: awssdk.ToString(s.CidrBlock)})
		}
	}
	slices.SortFunc(out, func(a, b providers.Subnet) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (c *Cloud) securityGroups(ctx context.Context, filters []ec2types.Filter) ([]providers.SecurityGroup, error) {
	var out []providers.SecurityGroup
	p := ec2.NewDescribeSecurityGroupsPaginator(c.client, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, g := range page.SecurityGroups {
			out = append(out, toSecurityGroup(g))
		}
	}
	return out, nil
}

func toSecurityGroup(g ec2types.SecurityGroup) providers.SecurityGroup {
	sg := providers.SecurityGroup{ID: awssdk.ToString(g.GroupId), Name: awssdk.ToString(g.GroupName), VPC: awssdk.ToString(g.VpcId)}
	if len(g.Tags) > 0 {
		sg.Tags = map[string]string{}
		for _, t := range g.Tags {
			sg.Tags[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
		}
	}
	for _, p := range g.IpPermissions {
		proto := awssdk.ToString(p.IpProtocol)
		from, to := int(awssdk.ToInt32(p.FromPort)), int(awssdk.ToInt32(p.ToPort))
		if proto == "-1" {
			from, to = 0, 65535
		}
		for _, pair := range p.UserIdGroupPairs {
			sg.Ingress = append(sg.Ingress, providers.Rule{Protocol: proto, FromPort: from, ToPort: to, SourceGroup: awssdk.ToString(pair.GroupId)})
		}
		for _, r := range p.IpRanges {
			sg.Ingress = append(sg.Ingress, providers.Rule{Protocol: proto, FromPort: from, ToPort: to, CIDR: awssdk.ToString(r.CidrIp)})
		}
	}
	slices.SortFunc(sg.Ingress, compareRules)
	return sg
}

func compareRules(a, b providers.Rule) int {
	if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	if a.FromPort != b.FromPort {
		return a.FromPort - b.FromPort
	}
	if a.ToPort != b.ToPort {
		return a.ToPort - b.ToPort
	}
	if c := strings.Compare(a.SourceGroup, b.SourceGroup); c != 0 {
		return c
	}
	return strings.Compare(a.CIDR, b.CIDR)
}

// loadBalancer describes the load balancer, its listeners and their tags;
// nil when it does not exist.
func (c *Cloud) loadBalancer(ctx context.Context, arn string) (*providers.LoadBalancer, error) {
	out, err := c.elb.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{arn}})
	var nf *elbtypes.LoadBalancerNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to describe load balancer %s (DescribeLoadBalancers): %w", arn, err)
	}
	if len(out.LoadBalancers) == 0 {
		return nil, nil
	}
	lb := &providers.LoadBalancer{ARN: arn, VPC: awssdk.ToString(out.LoadBalancers[0].VpcId)}
	p := elb.NewDescribeListenersPaginator(c.elb, &elb.DescribeListenersInput{LoadBalancerArn: awssdk.String(arn)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to describe the listeners of %s (DescribeListeners): %w", arn, err)
		}
		for _, l := range page.Listeners {
			li := providers.Listener{ARN: awssdk.ToString(l.ListenerArn), Protocol: string(l.Protocol), Port: int(awssdk.ToInt32(l.Port))}
			for _, a := range l.DefaultActions {
				if a.Type == elbtypes.ActionTypeEnumForward && a.TargetGroupArn != nil {
					li.TargetGroup = awssdk.ToString(a.TargetGroupArn)
				}
			}
			lb.Listeners = append(lb.Listeners, li)
		}
	}
	slices.SortFunc(lb.Listeners, func(a, b providers.Listener) int { return strings.Compare(a.ARN, b.ARN) })
	arns := make([]string, len(lb.Listeners))
	for i, l := range lb.Listeners {
		arns[i] = l.ARN
	}
	tags, err := c.elbTags(ctx, arns)
	if err != nil {
		return nil, fmt.Errorf("failed to read the tags of the listeners of %s (DescribeTags): %w", arn, err)
	}
	for i := range lb.Listeners {
		lb.Listeners[i].Tags = tags[lb.Listeners[i].ARN]
	}
	return lb, nil
}

// elbTags reads the tags of ELBv2 resources, 20 per call.
func (c *Cloud) elbTags(ctx context.Context, arns []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for batch := range slices.Chunk(arns, tagBatch) {
		res, err := c.elb.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: batch})
		if err != nil {
			return nil, err
		}
		for _, d := range res.TagDescriptions {
			if len(d.Tags) == 0 {
				continue
			}
			m := map[string]string{}
			for _, t := range d.Tags {
				m[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
			}
			out[awssdk.ToString(d.ResourceArn)] = m
		}
	}
	return out, nil
}

// targetGroups describes the target groups (one call; those that do not
// exist are left out) and their targets' health (one call each).
func (c *Cloud) targetGroups(ctx context.Context, arns []string) ([]providers.TargetGroup, error) {
	found, err := c.describeTargetGroups(ctx, arns)
	var nf *elbtypes.TargetGroupNotFoundException
	if errors.As(err, &nf) {
		// One of them is gone: find which, one call each (rare).
		found = nil
		for _, a := range arns {
			one, err := c.describeTargetGroups(ctx, []string{a})
			if errors.As(err, &nf) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("failed to describe target group %s (DescribeTargetGroups): %w", a, err)
			}
			found = append(found, one...)
		}
	} else if err != nil {
		return nil, fmt.Errorf("failed to describe target groups (DescribeTargetGroups): %w", err)
	}
	for i := range found {
		h, err := c.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: awssdk.String(found[i].ARN)})
		if err != nil {
			return nil, fmt.Errorf("failed to read the target health of %s (DescribeTargetHealth): %w", found[i].ARN, err)
		}
		for _, d := range h.TargetHealthDescriptions {
			t := providers.Target{}
			if d.Target != nil {
				t.ID, t.Port = awssdk.ToString(d.Target.Id), int(awssdk.ToInt32(d.Target.Port))
			}
			if d.TargetHealth != nil {
				t.State = string(d.TargetHealth.State)
			}
			found[i].Targets = append(found[i].Targets, t)
		}
		slices.SortFunc(found[i].Targets, func(a, b providers.Target) int { return strings.Compare(a.ID, b.ID) })
	}
	slices.SortFunc(found, func(a, b providers.TargetGroup) int { return strings.Compare(a.ARN, b.ARN) })
	return found, nil
}

func (c *Cloud) describeTargetGroups(ctx context.Context, arns []string) ([]providers.TargetGroup, error) {
	var out []providers.TargetGroup
	p := elb.NewDescribeTargetGroupsPaginator(c.elb, &elb.DescribeTargetGroupsInput{TargetGroupArns: arns})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, g := range page.TargetGroups {
			out = append(out, providers.TargetGroup{ARN: awssdk.ToString(g.TargetGroupArn), Name: awssdk.ToString(g.TargetGroupName),
				Protocol: string(g.Protocol), Port: int(awssdk.ToInt32(g.Port)), VPC: awssdk.ToString(g.VpcId)})
		}
	}
	return out, nil
}

// apiCode returns the API error code of err ("" when it has none).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
