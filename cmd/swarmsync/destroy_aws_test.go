package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/aws"
	"github.com/swarmsync/swarmsync/schema"
)

// TestDestroyEnvironment: destroy on aws terminates the instances, deletes
// the listeners swarmsync created (not the others) with their target
// groups, and deletes the managed security group once the terminated
// instances no longer use it (they shut down for 3 s here).
func TestDestroyEnvironment(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	sim, err := ec2sim.New(ec2sim.Options{ShuttingDownFor: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ctx := context.Background()
	cloud, err := aws.New(ctx, aws.Options{Region: "us-east-1", Endpoint: sim.URL(), HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""), Backoff: func(int) time.Duration { return time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	const cluster = "gone"
	sg, err := cloud.CreateManagedSecurityGroup(ctx, cluster, plan.ManagedSecurityGroupName(cluster), ec2sim.VPC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cloud.Launch(ctx, providers.LaunchRequest{Cluster: cluster, Group: "workers/web", Count: 2, Image: "ami-12345678", InstanceType: "t3.micro",
		Subnets: []string{ec2sim.DefaultSubnets[0].ID}, SecurityGroups: []string{sg}, IdempotencyToken: "destroy-1",
		Tags: map[string]string{providers.TagCluster: cluster, providers.TagGroup: "workers/web"}}); err != nil {
		t.Fatal(err)
	}
	lb := sim.AddLoadBalancer("web")
	if err := cloud.CreateListener(ctx, providers.ListenerRequest{Cluster: cluster, LoadBalancer: lb, TargetGroupName: plan.ListenerTargetGroupName(cluster, "TCP", 8080),
		Protocol: "TCP", Port: 8080}); err != nil {
		t.Fatal(err)
	}
	if err := cloud.CreateListener(ctx, providers.ListenerRequest{Cluster: "other", LoadBalancer: lb, TargetGroupName: plan.ListenerTargetGroupName("other", "TCP", 9090),
		Protocol: "TCP", Port: 9090}); err != nil {
		t.Fatal(err)
	}

	c := schema.Cluster{Name: cluster, Provider: schema.Provider{AWS: &schema.AWSProvider{Region: "us-east-1", ManagedSecurityGroup: true}},
		LoadBalancer: &schema.LoadBalancer{ARN: lb, Group: "web"}}
	var out bytes.Buffer
	a := &app{stdout: &out, stdin: strings.NewReader("")}
	start := time.Now()
	if err := destroyUnderLease(ctx, a, &destroyOptions{yes: true}, c, cloud, &apply.Lease{}); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out.String())
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("destroy took %s: it cannot have waited for the instances to release the security group", el)
	}
	for _, want := range []string{"listener TCP 8080", "security group " + sg, "2 instances terminated, 1 listener deleted, security group " + sg + " deleted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("destroy output lacks %q:\n%s", want, out.String())
		}
	}
	if got := sim.ListenerPorts(lb); len(got) != 1 || got[0] != 9090 {
		t.Errorf("listener ports %v after destroy, want only the other cluster's 9090", got)
	}
	if len(sim.SecurityGroups()) != 0 {
		t.Errorf("security groups after destroy: %+v", sim.SecurityGroups())
	}
}
