package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/swarmsync/swarmsync/providers"
)

var _ providers.Environment = (*Cloud)(nil)

// Values of providers.TagManaged.
const (
	managedSG       = "security-group"
	managedListener = "listener"
)

// ManagedSecurityGroup returns the id of the security group tagged as the
// cluster's managed one ("" when there is none), with one filtered
// DescribeSecurityGroups.
func (c *Cloud) ManagedSecurityGroup(ctx context.Context, cluster string) (string, error) {
	if err := checkCluster(cluster); err != nil {
		return "", fmt.Errorf("failed to find the managed security group: %w", err)
	}
	sgs, err := c.securityGroups(ctx, []ec2types.Filter{
		{Name: awssdk.String("tag:" + providers.TagCluster), Values: []string{cluster}},
		{Name: awssdk.String("tag:" + providers.TagManaged), Values: []string{managedSG}},
	})
	if err != nil {
		return "", fmt.Errorf("failed to find the managed security group of cluster %q (DescribeSecurityGroups): %w", cluster, err)
	}
	if len(sgs) == 0 {
		return "", nil
	}
	return sgs[0].ID, nil
}

// CreateManagedSecurityGroup creates the cluster's security group, tagged
// at creation. EC2 has no idempotency token for it: an existing managed
// group is returned instead, and a name taken meanwhile (a concurrent or
// interrupted create) is looked up again.
func (c *Cloud) CreateManagedSecurityGroup(ctx context.Context, cluster, name, vpc string) (string, error) {
	if id, err := c.ManagedSecurityGroup(ctx, cluster); err != nil || id != "" {
		return id, err
	}
	in := &ec2.CreateSecurityGroupInput{
		GroupName:   awssdk.String(name),
		Description: awssdk.String("swarmsync: Swarm traffic between the members of cluster " + cluster),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: []ec2types.Tag{
			{Key: awssdk.String(providers.TagCluster), Value: awssdk.String(cluster)},
			{Key: awssdk.String(providers.TagManaged), Value: awssdk.String(managedSG)},
			{Key: awssdk.String(providers.TagName), Value: awssdk.String(name)},
		}}},
	}
	if vpc != "" {
		in.VpcId = awssdk.String(vpc)
	}
	out, err := c.client.CreateSecurityGroup(ctx, in)
	if apiCode(err) == "InvalidGroup.Duplicate" {
		id, lerr := c.ManagedSecurityGroup(ctx, cluster)
		if lerr != nil || id != "" {
			return id, lerr
		}
		return "", fmt.Errorf("failed to create security group %s: a group of that name exists without the tags of cluster %q; rename or delete it", name, cluster)
	}
	if err != nil {
		return "", fmt.Errorf("failed to create security group %s (CreateSecurityGroup): %w", name, err)
	}
	c.log.InfoContext(ctx, "created the managed security group", "cluster", cluster, "group", awssdk.ToString(out.GroupId))
	return awssdk.ToString(out.GroupId), nil
}

// AuthorizeIngress adds the rules the managed group lacks (one describe,
// one authorize); a rule added meanwhile is not an error.
func (c *Cloud) AuthorizeIngress(ctx context.Context, cluster string, rules []providers.Rule) error {
	id, err := c.ManagedSecurityGroup(ctx, cluster)
	if err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("failed to authorize ingress: cluster %q has no managed security group", cluster)
	}
	sgs, err := c.securityGroups(ctx, []ec2types.Filter{{Name: awssdk.String("group-id"), Values: []string{id}}})
	if err != nil {
		return fmt.Errorf("failed to read the rules of %s (DescribeSecurityGroups): %w", id, err)
	}
	var perms []ec2types.IpPermission
	for _, r := range rules {
		if len(sgs) > 0 && slices.Contains(sgs[0].Ingress, r) {
			continue
		}
		p := ec2types.IpPermission{IpProtocol: awssdk.String(r.Protocol), FromPort: awssdk.Int32(int32(r.FromPort)), ToPort: awssdk.Int32(int32(r.ToPort))}
		if r.SourceGroup != "" {
			p.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: awssdk.String(r.SourceGroup)}}
		} else {
			p.IpRanges = []ec2types.IpRange{{CidrIp: awssdk.String(r.CIDR)}}
		}
		perms = append(perms, p)
	}
	if len(perms) == 0 {
		return nil
	}
	_, err = c.client.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: awssdk.String(id), IpPermissions: perms})
	if apiCode(err) == "InvalidPermission.Duplicate" {
		// Added meanwhile: one at a time, duplicates ignored.
		for _, p := range perms {
			_, err = c.client.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: awssdk.String(id), IpPermissions: []ec2types.IpPermission{p}})
			if err != nil && apiCode(err) != "InvalidPermission.Duplicate" {
				return fmt.Errorf("failed to authorize ingress into %s (AuthorizeSecurityGroupIngress): %w", id, err)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to authorize ingress into %s (AuthorizeSecurityGroupIngress): %w", id, err)
	}
	return nil
}

// DeleteManagedSecurityGroup deletes the cluster's managed group, if any.
// While instances still use it, it returns an error wrapping
// providers.ErrInUse.
func (c *Cloud) DeleteManagedSecurityGroup(ctx context.Context, cluster string) error {
	id, err := c.ManagedSecurityGroup(ctx, cluster)
	if err != nil || id == "" {
		return err
	}
	_, err = c.client.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: awssdk.String(id)})
	switch apiCode(err) {
	case "":
		if err != nil {
			return fmt.Errorf("failed to delete security group %s (DeleteSecurityGroup): %w", id, err)
		}
		return nil
	case "InvalidGroup.NotFound":
		return nil
	case "DependencyViolation":
		return fmt.Errorf("failed to delete security group %s: %w (instances or rules still refer to it)", id, providers.ErrInUse)
	}
	return fmt.Errorf("failed to delete security group %s (DeleteSecurityGroup): %w", id, err)
}

func targetDescriptions(ids []string) []elbtypes.TargetDescription {
	out := make([]elbtypes.TargetDescription, len(ids))
	for i, id := range ids {
		out[i] = elbtypes.TargetDescription{Id: awssdk.String(id)}
	}
	return out
}

// RegisterTargets registers instances in a target group (idempotent).
func (c *Cloud) RegisterTargets(ctx context.Context, tg string, ids []string) error {
	if _, err := c.elb.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: awssdk.String(tg), Targets: targetDescriptions(ids)}); err != nil {
		return fmt.Errorf("failed to register %v in %s (RegisterTargets): %w", ids, tg, err)
	}
	return nil
}

// DeregisterTargets deregisters instances from a target group; a target
// that is not registered (any more) is not an error.
func (c *Cloud) DeregisterTargets(ctx context.Context, tg string, ids []string) error {
	_, err := c.elb.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: awssdk.String(tg), Targets: targetDescriptions(ids)})
	var invalid *elbtypes.InvalidTargetException
	if errors.As(err, &invalid) {
		ts, terr := c.Targets(ctx, tg)
		if terr != nil {
			return terr
		}
		var still []string
		for _, t := range ts {
			if slices.Contains(ids, t.ID) && t.Registered() {
				still = append(still, t.ID)
			}
		}
		if len(still) == 0 {
			return nil
		}
		_, err = c.elb.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: awssdk.String(tg), Targets: targetDescriptions(still)})
	}
	if err != nil {
		return fmt.Errorf("failed to deregister %v from %s (DeregisterTargets): %w", ids, tg, err)
	}
	return nil
}

// DeregistrationDelay reads deregistration_delay.timeout_seconds.
func (c *Cloud) DeregistrationDelay(ctx context.Context, tg string) (time.Duration, error) {
	out, err := c.elb.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: awssdk.String(tg)})
	if err != nil {
		return 0, fmt.Errorf("failed to read the attributes of %s (DescribeTargetGroupAttributes): %w", tg, err)
	}
	for _, a := range out.Attributes {
		if awssdk.ToString(a.Key) == "deregistration_delay.timeout_seconds" {
			n, err := strconv.Atoi(awssdk.ToString(a.Value))
			if err != nil || n < 0 {
				return 0, fmt.Errorf("failed to read the deregistration delay of %s: %q is not a number of seconds", tg, awssdk.ToString(a.Value))
			}
			return time.Duration(n) * time.Second, nil
		}
	}
	return 300 * time.Second, nil // ELBv2's default
}

// Targets returns the target group's targets and their states.
func (c *Cloud) Targets(ctx context.Context, tg string) ([]providers.Target, error) {
	h, err := c.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: awssdk.String(tg)})
	if err != nil {
		return nil, fmt.Errorf("failed to read the target health of %s (DescribeTargetHealth): %w", tg, err)
	}
	var out []providers.Target
	for _, d := range h.TargetHealthDescriptions {
		t := providers.Target{}
		if d.Target != nil {
			t.ID, t.Port = awssdk.ToString(d.Target.Id), int(awssdk.ToInt32(d.Target.Port))
		}
		if d.TargetHealth != nil {
			t.State = string(d.TargetHealth.State)
		}
		out = append(out, t)
	}
	return out, nil
}

func listenerTags(req providers.ListenerRequest) []elbtypes.Tag {
	return []elbtypes.Tag{
		{Key: awssdk.String(providers.TagCluster), Value: awssdk.String(req.Cluster)},
		{Key: awssdk.String(providers.TagManaged), Value: awssdk.String(managedListener)},
		{Key: awssdk.String(providers.TagPort), Value: awssdk.String(strconv.Itoa(req.Port))},
	}
}

// CreateListener creates the target group (ELBv2 returns the existing
// one for the same name and settings), registers the targets, and creates
// the listener forwarding to it, both tagged at creation. A listener the
// cluster created on that port already is kept; one it did not create is
// never touched.
func (c *Cloud) CreateListener(ctx context.Context, req providers.ListenerRequest) error {
	if err := checkCluster(req.Cluster); err != nil {
		return fmt.Errorf("failed to create a listener: %w", err)
	}
	lb, err := c.loadBalancer(ctx, req.LoadBalancer)
	if err != nil {
		return err
	}
	if lb == nil {
		return fmt.Errorf("failed to create a listener: load balancer %s does not exist", req.LoadBalancer)
	}
	proto := elbtypes.ProtocolEnum(req.Protocol)
	tg, err := c.elb.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: awssdk.String(req.TargetGroupName), Protocol: proto,
		Port: awssdk.Int32(int32(req.Port)), VpcId: awssdk.String(lb.VPC), TargetType: elbtypes.TargetTypeEnumInstance, Tags: listenerTags(req)})
	var tgARN string
	var dup *elbtypes.DuplicateTargetGroupNameException
	switch {
	case errors.As(err, &dup):
		// ELBv2 returns the existing group for the same settings; an
		// emulator may refuse instead: take it when it is the cluster's.
		if tgARN, err = c.ownedTargetGroup(ctx, req); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("failed to create target group %s (CreateTargetGroup): %w", req.TargetGroupName, err)
	default:
		tgARN = awssdk.ToString(tg.TargetGroups[0].TargetGroupArn)
	}
	if len(req.Targets) > 0 {
		if err := c.RegisterTargets(ctx, tgARN, req.Targets); err != nil {
			return err
		}
	}
	for _, l := range lb.Listeners {
		if l.Port != req.Port {
			continue
		}
		if l.Tags[providers.TagCluster] == req.Cluster && l.TargetGroup == tgARN {
			return nil // created by an earlier, interrupted apply
		}
		return fmt.Errorf("failed to create a listener on port %d of %s: the port has a listener swarmsync did not create", req.Port, req.LoadBalancer)
	}
	_, err = c.elb.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: awssdk.String(req.LoadBalancer), Protocol: proto, Port: awssdk.Int32(int32(req.Port)),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: awssdk.String(tgARN)}}, Tags: listenerTags(req)})
	if err != nil {
		return fmt.Errorf("failed to create the listener on port %d of %s (CreateListener): %w", req.Port, req.LoadBalancer, err)
	}
	c.log.InfoContext(ctx, "created a listener", "cluster", req.Cluster, "port", req.Port, "protocol", req.Protocol)
	return nil
}

// DeleteListener deletes a listener the cluster created, then its target
// group. A listener already gone is not an error.
func (c *Cloud) DeleteListener(ctx context.Context, cluster, listener, tg string) error {
	tags, err := c.elbTags(ctx, []string{listener})
	var nf *elbtypes.ListenerNotFoundException
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return fmt.Errorf("failed to read the tags of listener %s (DescribeTags): %w", listener, err)
	case tags[listener][providers.TagCluster] != cluster || tags[listener][providers.TagManaged] != managedListener:
		return fmt.Errorf("refusing to delete listener %s: it was not created by swarmsync for cluster %q", listener, cluster)
	default:
		if _, err := c.elb.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: awssdk.String(listener)}); err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("failed to delete listener %s (DeleteListener): %w", listener, err)
		}
	}
	if tg == "" {
		return nil
	}
	if _, err := c.elb.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: awssdk.String(tg)}); err != nil {
		var tnf *elbtypes.TargetGroupNotFoundException
		if !errors.As(err, &tnf) {
			return fmt.Errorf("failed to delete target group %s (DeleteTargetGroup): %w", tg, err)
		}
	}
	return nil
}

// OwnedListeners returns the listeners of lb the cluster created.
func (c *Cloud) OwnedListeners(ctx context.Context, cluster, lbARN string) ([]providers.Listener, error) {
	lb, err := c.loadBalancer(ctx, lbARN)
	if err != nil || lb == nil {
		return nil, err
	}
	var out []providers.Listener
	for _, l := range lb.Listeners {
		if l.Tags[providers.TagCluster] == cluster && l.Tags[providers.TagManaged] == managedListener {
			out = append(out, l)
		}
	}
	return out, nil
}

// ownedTargetGroup returns the ARN of the target group named in req when
// the cluster created it for that listener.
func (c *Cloud) ownedTargetGroup(ctx context.Context, req providers.ListenerRequest) (string, error) {
	out, err := c.elb.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{req.TargetGroupName}})
	if err != nil || len(out.TargetGroups) == 0 {
		return "", fmt.Errorf("failed to find target group %s (DescribeTargetGroups): %w", req.TargetGroupName, err)
	}
	arn := awssdk.ToString(out.TargetGroups[0].TargetGroupArn)
	tags, err := c.elbTags(ctx, []string{arn})
	if err != nil {
		return "", fmt.Errorf("failed to read the tags of target group %s (DescribeTags): %w", arn, err)
	}
	if t := tags[arn]; t[providers.TagCluster] != req.Cluster || t[providers.TagPort] != strconv.Itoa(req.Port) {
		return "", fmt.Errorf("failed to create target group %s: a target group of that name exists that swarmsync did not create for port %d of cluster %q", req.TargetGroupName, req.Port, req.Cluster)
	}
	return arn, nil
}
