package ec2conformance

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// rawELB is an ELBv2 client on the backend, counting through c's recorder.
func (b *backend) rawELB(t *testing.T, c client) *elb.Client {
	t.Helper()
	return elb.New(elb.Options{Region: region, BaseEndpoint: awssdk.String(b.endpoint), Credentials: creds,
		HTTPClient: c.httpClient()})
}

// setupLB makes a load balancer and an instance target group on port, in
// the backend's VPC, and returns their ARNs. moto creates them through the
// API; the emulator has them made by its test hooks (it serves only what
// swarmsync calls).
func (b *backend) setupLB(t *testing.T, c client, name string, port int) (lbARN, tgARN, vpc string) {
	t.Helper()
	ctx := context.Background()
	if b.sim != nil {
		return b.sim.AddLoadBalancer(name), b.sim.AddTargetGroup(name, port, time.Second), "vpc-0a00000000000000a"
	}
	subs, err := c.raw.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: b.subnets[:2]})
	if err != nil {
		t.Fatal(err)
	}
	vpc = awssdk.ToString(subs.Subnets[0].VpcId)
	e := b.rawELB(t, c)
	lb, err := e.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: awssdk.String(name), Type: elbtypes.LoadBalancerTypeEnumNetwork,
		Subnets: b.subnets[:2], Scheme: elbtypes.LoadBalancerSchemeEnumInternal})
	if err != nil {
		t.Fatalf("CreateLoadBalancer: %v", err)
	}
	tg, err := e.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: awssdk.String(name), Protocol: elbtypes.ProtocolEnumTcp,
		Port: awssdk.Int32(int32(port)), VpcId: awssdk.String(vpc), TargetType: elbtypes.TargetTypeEnumInstance})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	return awssdk.ToString(lb.LoadBalancers[0].LoadBalancerArn), awssdk.ToString(tg.TargetGroups[0].TargetGroupArn), vpc
}

// TestNetworkObserve observes subnets, security groups (by id and by the
// cluster tag) with their rules, a load balancer's listeners with their
// tags, and target groups with their targets, at one call per resource
// kind and one target health call per target group.
func TestNetworkObserve(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := b.clients(t)
		ctx := context.Background()
		cluster := unique("net")
		e := b.rawELB(t, c)
		lbARN, tgARN, vpc := b.setupLB(t, c, cluster, 80)

		// A group of the account (by id) and one owned by the cluster (by tag).
		own, err := c.raw.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: awssdk.String(cluster), Description: awssdk.String("swarm"),
			VpcId: awssdk.String(vpc),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup,
				Tags: []types.Tag{{Key: awssdk.String(providers.TagCluster), Value: awssdk.String(cluster)}}}}})
		if err != nil {
			t.Fatalf("CreateSecurityGroup: %v", err)
		}
		other, err := c.raw.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: awssdk.String(cluster + "-other"),
			Description: awssdk.String("other"), VpcId: awssdk.String(vpc)})
		if err != nil {
			t.Fatalf("CreateSecurityGroup: %v", err)
		}
		ownID, otherID := awssdk.ToString(own.GroupId), awssdk.ToString(other.GroupId)
		_, err = c.raw.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: awssdk.String(ownID),
			IpPermissions: []types.IpPermission{
				{IpProtocol: awssdk.String("tcp"), FromPort: awssdk.Int32(2377), ToPort: awssdk.Int32(2377),
					UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: awssdk.String(ownID)}}},
				{IpProtocol: awssdk.String("udp"), FromPort: awssdk.Int32(4789), ToPort: awssdk.Int32(4789),
					IpRanges: []types.IpRange{{CidrIp: awssdk.String("10.0.0.0/16")}}},
			}})
		if err != nil {
			t.Fatalf("AuthorizeSecurityGroupIngress: %v", err)
		}

		ids := rawLaunch(t, c, 2, b.subnets[0], map[string]string{providers.TagCluster: cluster})
		if _, err := e.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: awssdk.String(tgARN),
			Targets: []elbtypes.TargetDescription{{Id: awssdk.String(ids[0])}}}); err != nil {
			t.Fatalf("RegisterTargets: %v", err)
		}
		l, err := e.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: awssdk.String(lbARN), Protocol: elbtypes.ProtocolEnumTcp,
			Port: awssdk.Int32(80), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: awssdk.String(tgARN)}},
			Tags: []elbtypes.Tag{{Key: awssdk.String(providers.TagCluster), Value: awssdk.String(cluster)}}})
		if err != nil {
			t.Fatalf("CreateListener: %v", err)
		}

		before := c.rec.Counts()
		n, err := c.cloud.Network(ctx, providers.NetworkQuery{Cluster: cluster, Subnets: b.subnets[:2], SecurityGroups: []string{otherID},
			OwnedSecurityGroups: true, LoadBalancer: lbARN})
		if err != nil {
			t.Fatal(err)
		}
		calls := diffCounts(before, c.rec.Counts())
		want := map[string]int{"DescribeSubnets": 1, "DescribeSecurityGroups": 2, "DescribeLoadBalancers": 1, "DescribeListeners": 1,
			"DescribeTags": 1, "DescribeTargetGroups": 1, "DescribeTargetHealth": 1}
		if diff := cmp.Diff(want, calls); diff != "" {
			t.Errorf("calls per observation (-want +got):\n%s", diff)
		}

		if len(n.Subnets) != 2 || n.Subnets[0].Zone == n.Subnets[1].Zone || n.Subnets[0].Zone == "" || n.Subnets[0].VPC != vpc || n.Subnets[0].CIDR == "" {
			t.Errorf("subnets = %+v; want the two subnets, in two zones of %s, with their CIDRs", n.Subnets, vpc)
		}
		var gotOwn *providers.SecurityGroup
		var sgIDs []string
		for i, g := range n.SecurityGroups {
			sgIDs = append(sgIDs, g.ID)
			if g.ID == ownID {
				gotOwn = &n.SecurityGroups[i]
			}
		}
		if diff := cmp.Diff(sorted(ownID, otherID), sgIDs); diff != "" {
			t.Fatalf("security groups (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]providers.Rule{
			{Protocol: "tcp", FromPort: 2377, ToPort: 2377, SourceGroup: ownID},
			{Protocol: "udp", FromPort: 4789, ToPort: 4789, CIDR: "10.0.0.0/16"},
		}, gotOwn.Ingress); diff != "" {
			t.Errorf("rules of the owned group (-want +got):\n%s", diff)
		}
		if gotOwn.Tags[providers.TagCluster] != cluster || gotOwn.VPC != vpc {
			t.Errorf("owned group %+v: want the cluster tag and VPC %s", gotOwn, vpc)
		}

		if n.LoadBalancer == nil || n.LoadBalancer.VPC != vpc || len(n.LoadBalancer.Listeners) != 1 {
			t.Fatalf("load balancer = %+v; want one listener in %s", n.LoadBalancer, vpc)
		}
		if diff := cmp.Diff(providers.Listener{ARN: awssdk.ToString(l.Listeners[0].ListenerArn), Protocol: "TCP", Port: 80, TargetGroup: tgARN,
			Tags: map[string]string{providers.TagCluster: cluster}}, n.LoadBalancer.Listeners[0]); diff != "" {
			t.Errorf("listener (-want +got):\n%s", diff)
		}
		if len(n.TargetGroups) != 1 || n.TargetGroups[0].ARN != tgARN || n.TargetGroups[0].Port != 80 || len(n.TargetGroups[0].Targets) != 1 ||
			n.TargetGroups[0].Targets[0].ID != ids[0] || !n.TargetGroups[0].Targets[0].Registered() {
			t.Errorf("target groups = %+v; want %s with %s registered", n.TargetGroups, tgARN, ids[0])
		}

		// A target group that does not exist is absent, not an error.
		gone := tgARN[:len(tgARN)-4] + "dead"
		n, err = c.cloud.Network(ctx, providers.NetworkQuery{Cluster: cluster, TargetGroups: []string{tgARN, gone}})
		if err != nil {
			t.Fatal(err)
		}
		if len(n.TargetGroups) != 1 || n.TargetGroups[0].ARN != tgARN {
			t.Errorf("target groups = %+v; want only %s", n.TargetGroups, tgARN)
		}
	})
}

// diffCounts returns the per-action request counts between two snapshots.
func diffCounts(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// TestEnvironmentChanges drives every change swarmsync makes around a
// cluster through the real provider: the managed security group (created
// once, tagged at creation, rules added idempotently, deleted), targets
// registered and deregistered, and a listener with its target group
// created (twice: the same one) and deleted, while a listener the cluster
// did not create is refused.
func TestEnvironmentChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := b.clients(t)
		ctx := context.Background()
		cluster := unique("env")
		lbARN, tgARN, vpc := b.setupLB(t, c, cluster, 80)

		id, err := c.cloud.CreateManagedSecurityGroup(ctx, cluster, "swarmsync-"+cluster, vpc)
		if err != nil || id == "" {
			t.Fatalf("CreateManagedSecurityGroup = %q, %v", id, err)
		}
		again, err := c.cloud.CreateManagedSecurityGroup(ctx, cluster, "swarmsync-"+cluster, vpc)
		if err != nil || again != id {
			t.Fatalf("second CreateManagedSecurityGroup = %q, %v; want %s", again, err, id)
		}
		rules := []providers.Rule{{Protocol: "tcp", FromPort: 2377, ToPort: 2377, SourceGroup: id}, {Protocol: "udp", FromPort: 4789, ToPort: 4789, SourceGroup: id}}
		for range 2 {
			if err := c.cloud.AuthorizeIngress(ctx, cluster, rules); err != nil {
				t.Fatalf("AuthorizeIngress: %v", err)
			}
		}
		n, err := c.cloud.Network(ctx, providers.NetworkQuery{Cluster: cluster, OwnedSecurityGroups: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(n.SecurityGroups) != 1 || n.SecurityGroups[0].ID != id {
			t.Fatalf("owned security groups = %+v, want %s", n.SecurityGroups, id)
		}
		if diff := cmp.Diff(rules, n.SecurityGroups[0].Ingress); diff != "" {
			t.Errorf("rules (-want +got):\n%s", diff)
		}
		if n.SecurityGroups[0].Tags[providers.TagManaged] != "security-group" {
			t.Errorf("tags %v: want %s=security-group set at creation", n.SecurityGroups[0].Tags, providers.TagManaged)
		}

		ids := rawLaunch(t, c, 2, b.subnets[0], map[string]string{providers.TagCluster: cluster})
		if err := c.cloud.RegisterTargets(ctx, tgARN, ids); err != nil {
			t.Fatal(err)
		}
		if err := c.cloud.DeregisterTargets(ctx, tgARN, ids[:1]); err != nil {
			t.Fatal(err)
		}
		if err := c.cloud.DeregisterTargets(ctx, tgARN, ids[:1]); err != nil {
			t.Errorf("deregistering twice: %v", err)
		}
		ts, err := c.cloud.Targets(ctx, tgARN)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range ts {
			if tg.ID == ids[0] && tg.Registered() {
				t.Errorf("%s is still registered after its deregistration: %+v", ids[0], ts)
			}
		}
		if !slices.ContainsFunc(ts, func(x providers.Target) bool { return x.ID == ids[1] && x.Registered() }) {
			t.Errorf("targets %+v: want %s registered", ts, ids[1])
		}
		if d, err := c.cloud.DeregistrationDelay(ctx, tgARN); err != nil || d < 0 {
			t.Errorf("DeregistrationDelay = %s, %v", d, err)
		}

		req := providers.ListenerRequest{Cluster: cluster, LoadBalancer: lbARN, TargetGroupName: plan.ListenerTargetGroupName(cluster, "TCP", 8080),
			Protocol: "TCP", Port: 8080, Targets: ids[1:]}
		for range 2 {
			if err := c.cloud.CreateListener(ctx, req); err != nil {
				t.Fatalf("CreateListener: %v", err)
			}
		}
		n, err = c.cloud.Network(ctx, providers.NetworkQuery{Cluster: cluster, LoadBalancer: lbARN})
		if err != nil {
			t.Fatal(err)
		}
		if len(n.LoadBalancer.Listeners) != 1 || n.LoadBalancer.Listeners[0].Port != 8080 || n.LoadBalancer.Listeners[0].Tags[providers.TagManaged] != "listener" {
			t.Fatalf("listeners = %+v; want one on 8080 tagged as swarmsync's", n.LoadBalancer.Listeners)
		}
		l := n.LoadBalancer.Listeners[0]
		if len(n.TargetGroups) != 1 || n.TargetGroups[0].ARN != l.TargetGroup || len(n.TargetGroups[0].Targets) != 1 || n.TargetGroups[0].Targets[0].ID != ids[1] {
			t.Errorf("target groups = %+v; want the listener's with %s", n.TargetGroups, ids[1])
		}

		e := b.rawELB(t, c)
		foreign, err := e.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: awssdk.String(lbARN), Protocol: elbtypes.ProtocolEnumTcp,
			Port: awssdk.Int32(80), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: awssdk.String(tgARN)}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.cloud.DeleteListener(ctx, cluster, awssdk.ToString(foreign.Listeners[0].ListenerArn), tgARN); err == nil {
			t.Errorf("DeleteListener of a listener swarmsync did not create succeeded")
		}
		if err := c.cloud.DeleteListener(ctx, cluster, l.ARN, l.TargetGroup); err != nil {
			t.Fatalf("DeleteListener: %v", err)
		}
		n, err = c.cloud.Network(ctx, providers.NetworkQuery{Cluster: cluster, LoadBalancer: lbARN, TargetGroups: []string{l.TargetGroup}})
		if err != nil {
			t.Fatal(err)
		}
		if len(n.LoadBalancer.Listeners) != 1 || n.LoadBalancer.Listeners[0].Port != 80 || len(n.TargetGroups) != 0 {
			t.Errorf("after delete: listeners %+v, target groups %+v; want only the foreign listener on 80", n.LoadBalancer.Listeners, n.TargetGroups)
		}

		if _, err := c.raw.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
			t.Fatal(err)
		}
		if err := c.cloud.DeleteManagedSecurityGroup(ctx, cluster); err != nil {
			t.Fatalf("DeleteManagedSecurityGroup: %v", err)
		}
		if got, err := c.cloud.ManagedSecurityGroup(ctx, cluster); err != nil || got != "" {
			t.Errorf("after delete: ManagedSecurityGroup = %q, %v; want none", got, err)
		}
	})
}

// TestObserveCallsAtScale measures what one observation of an aws cluster
// costs in API calls at N instances and T target groups (on the emulator,
// which pages like EC2): ⌈N/1000⌉ DescribeInstances, one DescribeSubnets,
// one DescribeSecurityGroups per selector, and on ELBv2 one
// DescribeLoadBalancers, one DescribeListeners, ⌈L/20⌉ DescribeTags for L
// listeners, one DescribeTargetGroups and T DescribeTargetHealth.
func TestObserveCallsAtScale(t *testing.T) {
	b := simBackend(t)
	c := b.clients(t)
	ctx := context.Background()
	const cluster = "scale"
	const n, specTGs, listeners = 2500, 3, 25
	// Launched raw: the provider's client-side instance budget (EC2's
	// 1,000 + 2/s) would make this test wait.
	for left := n; left > 0; left -= 1000 {
		rawLaunch(t, c, min(left, 1000), b.subnets[0], map[string]string{providers.TagCluster: cluster, providers.TagGroup: "workers/web"})
	}
	insts, err := c.cloud.Instances(ctx, cluster)
	if err != nil || len(insts) != n {
		t.Fatalf("%d instances, %v", len(insts), err)
	}
	var tgs []string
	for i := range specTGs {
		tg := b.sim.AddTargetGroup(fmt.Sprintf("spec-%d", i), 80+i, time.Second)
		if err := c.cloud.RegisterTargets(ctx, tg, ids(insts[:100])); err != nil {
			t.Fatal(err)
		}
		tgs = append(tgs, tg)
	}
	lb := b.sim.AddLoadBalancer("scale")
	for i := range listeners {
		port := 10000 + i
		if err := c.cloud.CreateListener(ctx, providers.ListenerRequest{Cluster: cluster, LoadBalancer: lb, TargetGroupName: plan.ListenerTargetGroupName(cluster, "TCP", port),
			Protocol: "TCP", Port: port, Targets: ids(insts[:10])}); err != nil {
			t.Fatal(err)
		}
	}
	before := c.rec.Counts()
	if _, err := c.cloud.Instances(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	nw, err := c.cloud.Network(ctx, providers.NetworkQuery{Cluster: cluster, Subnets: b.subnets, SecurityGroups: []string{"sg-0000000000000000a"},
		OwnedSecurityGroups: true, TargetGroups: tgs, LoadBalancer: lb})
	if err != nil {
		t.Fatal(err)
	}
	calls := diffCounts(before, c.rec.Counts())
	tgTotal := specTGs + listeners
	want := map[string]int{"DescribeInstances": 3, "DescribeSubnets": 1, "DescribeSecurityGroups": 2, "DescribeLoadBalancers": 1,
		"DescribeListeners": 1, "DescribeTags": 2, "DescribeTargetGroups": 1, "DescribeTargetHealth": tgTotal}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if len(nw.TargetGroups) != tgTotal || len(nw.LoadBalancer.Listeners) != listeners {
		t.Errorf("observed %d target groups and %d listeners, want %d and %d", len(nw.TargetGroups), len(nw.LoadBalancer.Listeners), tgTotal, listeners)
	}
	total := 0
	for _, v := range calls {
		total += v
	}
	t.Logf("FIGURE observe calls at N=%d instances, T=%d target groups (%d listeners): %d (%v)", n, tgTotal, listeners, total, calls)
}
