package apply

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/aws"
	"github.com/swarmsync/swarmsync/schema"
)

// TestRunEnvironment runs the steps on the AWS environment through the
// real aws provider over HTTP against the emulator, on the apply's
// virtual clock: the managed security group and its rules, a
// deregistration whose delay is awaited, a listener with its target group
// and targets. Running the same plan again (an apply interrupted and
// re-run) changes nothing more.
func TestRunEnvironment(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	w := newWorld()
	bootstrapSwarm(t, w)
	sim, err := ec2sim.New(ec2sim.Options{Clock: w.clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ctx := context.Background()
	cloud, err := aws.New(ctx, aws.Options{Region: "us-east-1", Endpoint: sim.URL(), HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""), Backoff: func(int) time.Duration { return time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	insts, err := cloud.Launch(ctx, providers.LaunchRequest{Cluster: "c1", Group: "workers/x", Count: 2, Image: "ami-12345678", InstanceType: "t3.micro",
		Subnets: []string{ec2sim.DefaultSubnets[0].ID}, Tags: map[string]string{providers.TagCluster: "c1", providers.TagGroup: "workers/x"}, IdempotencyToken: "t-env"})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{insts[0].ID, insts[1].ID}
	const delay = 45 * time.Second
	tg, lb := sim.AddTargetGroup("web", 80, delay), sim.AddLoadBalancer("web")
	if err := cloud.RegisterTargets(ctx, tg, ids); err != nil {
		t.Fatal(err)
	}

	c := testCluster()
	c.Provider = schema.Provider{AWS: &schema.AWSProvider{Region: "us-east-1", ManagedSecurityGroup: true}}
	c.Workers["x"] = schema.WorkerGroup{Count: 1, TargetGroups: []string{tg}}
	c.LoadBalancer = &schema.LoadBalancer{ARN: lb, Group: "x"}
	self := plan.ManagedSecurityGroupSelf
	p := &plan.Plan{Cluster: "c1", Desired: c, Observation: plan.ObservationSummary{Fingerprint: "fp-env"}, Steps: []plan.Step{
		{ID: "create-security-group-swarmsync-c1", Action: plan.ActionCreateSecurityGroup, VPC: ec2sim.VPC},
		{ID: "authorize-ingress-swarmsync-c1", Action: plan.ActionAuthorizeIngress, DependsOn: []string{"create-security-group-swarmsync-c1"},
			Rules: []providers.Rule{{Protocol: "tcp", FromPort: 2377, ToPort: 2377, SourceGroup: self}, {Protocol: "udp", FromPort: 4789, ToPort: 4789, SourceGroup: self}}},
		{ID: "deregister-targets-workers-x-" + ids[0], Action: plan.ActionDeregisterTargets, Group: "workers/x", Instance: ids[0], TargetGroups: []string{tg}},
		{ID: "await-deregistered-workers-x-" + ids[0], Action: plan.ActionAwaitDeregistered, Group: "workers/x", Instance: ids[0], TargetGroups: []string{tg},
			DependsOn: []string{"deregister-targets-workers-x-" + ids[0]}},
		{ID: "create-listener-workers-x-tcp-8080", Action: plan.ActionCreateListener, Group: "workers/x", Port: 8080, Protocol: "TCP",
			TargetGroupName: plan.ListenerTargetGroupName("c1", "TCP", 8080), Targets: ids[1:]},
	}}
	deps := w.deps()
	deps.Cloud = cloud
	for run := range 2 {
		start := w.clock.Now()
		if _, err := Run(ctx, p, deps); err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		if el := w.clock.Now().Sub(start); run == 0 && el < delay {
			t.Errorf("the deregistration was awaited %s of virtual time, want at least its delay %s", el, delay)
		}
		sgs := sim.SecurityGroups()
		if len(sgs) != 1 || sgs[0].Tags[providers.TagCluster] != "c1" || sgs[0].Name != "swarmsync-c1" {
			t.Fatalf("run %d: security groups %+v; want one, swarmsync-c1, tagged at creation", run+1, sgs)
		}
		want := []ec2sim.Permission{{Protocol: "tcp", FromPort: 2377, ToPort: 2377, SourceGroup: sgs[0].ID}, {Protocol: "udp", FromPort: 4789, ToPort: 4789, SourceGroup: sgs[0].ID}}
		if diff := cmp.Diff(want, sgs[0].Ingress); diff != "" {
			t.Errorf("run %d: rules (-want +got):\n%s", run+1, diff)
		}
		if got := sim.Targets(tg); !slices.Equal(got, []ec2sim.Target{{ID: ids[1], State: "healthy"}}) {
			t.Errorf("run %d: targets of %s = %+v; want only %s", run+1, tg, got, ids[1])
		}
		if got := sim.ListenerPorts(lb); !slices.Equal(got, []int{8080}) {
			t.Errorf("run %d: listener ports %v; want [8080]", run+1, got)
		}
	}
}
