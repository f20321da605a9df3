package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/aws"
)

// TestAWSProviderThroughTheCLI runs `observe` and `plan` of the AWS example
// spec through connect(): the real aws provider over HTTP against the EC2
// emulator (AWS_ENDPOINT_URL_EC2, static credentials from the environment),
// and DOCKER_HOST on the manager of a real one-node lab Swarm.
func TestAWSProviderThroughTheCLI(t *testing.T) {
	l := lab.Start(t, lab.Options{Managers: 1, NoImage: true})

	subnets := []ec2sim.Subnet{
		{ID: "subnet-0a1", Zone: "eu-west-1a", CIDR: "10.90.1.0/24"},
		{ID: "subnet-0b2", Zone: "eu-west-1b", CIDR: "10.90.2.0/24"},
		{ID: "subnet-0c3", Zone: "eu-west-1c", CIDR: "10.90.3.0/24"},
	}
	sim, err := ec2sim.New(ec2sim.Options{Subnets: subnets})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	// The spec's security groups: sg-0swarm lets Swarm's traffic through
	// between its members (the network preflight checks it), sg-0web is
	// the workers' own.
	var swarmRules []ec2sim.Permission
	for _, r := range plan.SwarmRules {
		swarmRules = append(swarmRules, ec2sim.Permission{Protocol: r.Protocol, FromPort: r.Port, ToPort: r.Port, SourceGroup: "sg-0swarm"})
	}
	sim.AddSecurityGroup(ec2sim.SecurityGroup{ID: "sg-0swarm", Name: "swarm", Ingress: swarmRules})
	sim.AddSecurityGroup(ec2sim.SecurityGroup{ID: "sg-0web", Name: "web"})

	t.Setenv("AWS_ENDPOINT_URL_EC2", sim.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSWARMSYNCTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "swarmsync-test-secret-key")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("DOCKER_HOST", l.Cloud.Endpoint(l.Managers[0].ID))

	// Two workers of cluster prod already run, and one instance of another
	// cluster that must never show up.
	ctx := context.Background()
	cloud, err := aws.New(ctx, aws.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	launch := func(cluster string, n int, token string) {
		t.Helper()
		_, err := cloud.Launch(ctx, providers.LaunchRequest{
			Cluster: cluster, Group: "workers/general", Count: n,
			Image: "ami-0123456789abcdef0", InstanceType: "m5.large", Subnets: []string{"subnet-0a1"},
			Tags: map[string]string{
				providers.TagCluster: cluster, providers.TagGroup: "workers/general",
				providers.TagConfig: "old", providers.TagName: cluster + "-general",
			},
			UserData: []byte("#!/bin/sh\n"), IdempotencyToken: token,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	launch("prod", 2, "cli-test-prod")
	launch("other", 1, "cli-test-other")

	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := Main(args, strings.NewReader(""), &out, &errb)
		return out.String(), errb.String(), code
	}

	stdout, stderr, code := run("observe", "--repo", "../../fixtures/aws-example")
	if code != 0 {
		t.Fatalf("observe exited %d: %s", code, stderr)
	}
	var obs plan.Observed
	if err := json.Unmarshal([]byte(stdout), &obs); err != nil {
		t.Fatalf("observe printed no observation: %v\n%s", err, stdout)
	}
	if len(obs.Instances) != 2 {
		t.Errorf("observed %d instances, want the 2 of cluster prod: %+v", len(obs.Instances), obs.Instances)
	}
	for _, in := range obs.Instances {
		if in.Cluster != "prod" || in.Group != "workers/general" || in.PrivateIP == "" {
			t.Errorf("instance %+v: want cluster prod, group workers/general and a private IP", in)
		}
	}
	if obs.Network == nil || len(obs.Network.Subnets) != 3 || len(obs.Network.SecurityGroups) != 2 {
		t.Errorf("network = %+v, want the spec's 3 subnets and 2 security groups", obs.Network)
	}
	if !obs.Swarm.Active || !obs.Swarm.SelfIsLeader || len(obs.Swarm.Nodes) != 1 {
		t.Errorf("swarm = %+v, want the active one-node lab swarm seen from its leader", obs.Swarm)
	}

	stdout, stderr, code = run("plan", "--repo", "../../fixtures/aws-example", "--format", "json", "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("plan exited %d, want 2 (changes): %s", code, stderr)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("plan printed no plan: %v\n%s", err, stdout)
	}
	if p.Observation.Instances != 2 || p.Summary[plan.ActionLaunch] == 0 {
		t.Errorf("plan observed %d instances and launches %d times; want 2 and some launches",
			p.Observation.Instances, p.Summary[plan.ActionLaunch])
	}
	if strings.Contains(stdout+stderr, "swarmsync-test-secret-key") {
		t.Error("the AWS secret key appears in the output")
	}
}
