package plan

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// steadyCluster is fixtures/plans/no-changes: 3 managers and 3 web
// workers in place, with its spec.
func steadyCluster(t *testing.T) (schema.Cluster, Observed) {
	t.Helper()
	b, err := os.ReadFile("../fixtures/plans/no-changes/observed.json")
	if err != nil {
		t.Fatal(err)
	}
	o, err := UnmarshalObserved(b)
	if err != nil {
		t.Fatal(err)
	}
	inst := schema.Instance{Type: "t3.medium", Image: "ami-0123", Subnets: []string{"subnet-a", "subnet-b", "subnet-c"}, SecurityGroups: []string{"sg-1"}}
	winst := inst
	winst.Type = "m5.large"
	d := 5 * time.Minute
	c := schema.Cluster{Name: "prod", Provider: schema.Provider{AWS: &schema.AWSProvider{Region: "eu-west-1"}},
		Managers: schema.Managers{Count: 3, Instance: inst, Availability: "drain", Labels: map[string]string{"role": "control"}},
		Workers:  map[string]schema.WorkerGroup{"web": {Count: 3, Instance: winst, Availability: "active", Labels: map[string]string{"tier": "web"}}},
		Update: schema.Update{Parallelism: 2, MaxSurge: 1, Delay: schema.Duration{Duration: 30 * time.Second}, Monitor: schema.Duration{Duration: time.Minute},
			FailureAction: "pause", JoinTimeout: schema.Duration{Duration: 10 * time.Minute}, DrainTimeout: schema.Duration{Duration: d}, DownGrace: schema.Duration{Duration: d}},
		Schedule: schema.Schedule{Reconcile: "@every 1m"}, Safety: schema.Safety{MaxRemovalsPerApply: 5}, JoinTokens: schema.JoinTokens{RotateAfterJoin: true}}
	for _, g := range []string{schema.ManagersGroup, "workers/web"} {
		if ConfigDigest(c, g) != o.Instances[slices.IndexFunc(o.Instances, func(i providers.Instance) bool { return i.Group == g })].Config {
			t.Fatalf("the spec of the test is not the fixture's (group %s)", g)
		}
	}
	return c, o
}

func swarmSG(id string, skip ...string) providers.SecurityGroup {
	g := providers.SecurityGroup{ID: id, VPC: "vpc-1"}
	for _, r := range SwarmRules {
		if !slices.Contains(skip, r.String()) {
			g.Ingress = append(g.Ingress, providers.Rule{Protocol: r.Protocol, FromPort: r.Port, ToPort: r.Port, SourceGroup: id})
		}
	}
	return g
}

func threeSubnets() []providers.Subnet {
	return []providers.Subnet{{ID: "subnet-a", Zone: "eu-west-1a", VPC: "vpc-1", CIDR: "10.0.0.0/20"},
		{ID: "subnet-b", Zone: "eu-west-1b", VPC: "vpc-1", CIDR: "10.0.16.0/20"}, {ID: "subnet-c", Zone: "eu-west-1c", VPC: "vpc-1", CIDR: "10.0.32.0/20"}}
}

func TestPreflight(t *testing.T) {
	tests := []struct {
		name    string
		network providers.Network
		refused string // substring of the refusal; "" = planned
		steps   int
		note    string
	}{
		{name: "all rules present", network: providers.Network{Subnets: threeSubnets(), SecurityGroups: []providers.SecurityGroup{swarmSG("sg-1")}}},
		{name: "a subnet is missing", network: providers.Network{Subnets: threeSubnets()[:2], SecurityGroups: []providers.SecurityGroup{swarmSG("sg-1")}},
			refused: "managers.instance.subnets: subnet subnet-c does not exist"},
		{name: "a security group is missing", network: providers.Network{Subnets: threeSubnets()},
			refused: "managers.instance.securityGroups: security group sg-1 does not exist"},
		{name: "a missing rule names the rule to add", network: providers.Network{Subnets: threeSubnets(), SecurityGroups: []providers.SecurityGroup{swarmSG("sg-1", "7946/udp")}},
			refused: "add to security group sg-1 an inbound rule udp port 7946 from security group sg-1"},
		{name: "a CIDR rule covering the subnets counts", network: providers.Network{Subnets: threeSubnets(), SecurityGroups: []providers.SecurityGroup{func() providers.SecurityGroup {
			g := swarmSG("sg-1", "4789/udp")
			g.Ingress = append(g.Ingress, providers.Rule{Protocol: "-1", FromPort: 0, ToPort: 65535, CIDR: "10.0.0.0/16"})
			return g
		}()}}},
		{name: "a CIDR rule not covering every subnet does not", network: providers.Network{Subnets: threeSubnets(), SecurityGroups: []providers.SecurityGroup{func() providers.SecurityGroup {
			g := swarmSG("sg-1", "4789/udp")
			g.Ingress = append(g.Ingress, providers.Rule{Protocol: "udp", FromPort: 4789, ToPort: 4789, CIDR: "10.0.0.0/19"})
			return g
		}()}}, refused: "inbound rule udp port 4789"},
		{name: "one zone gets a note", network: providers.Network{Subnets: []providers.Subnet{{ID: "subnet-a", Zone: "z1"}, {ID: "subnet-b", Zone: "z1"}, {ID: "subnet-c", Zone: "z1"}},
			SecurityGroups: []providers.SecurityGroup{swarmSG("sg-1")}}, note: "Group managers has all its subnets in zone z1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, o := steadyCluster(t)
			o.Network = &tt.network
			p, err := Compute(c, o, Source{})
			var ref *RefusedError
			if tt.refused != "" {
				if !errors.As(err, &ref) || ref.Limit != "network" || !strings.Contains(ref.Error(), tt.refused) {
					t.Fatalf("Compute = %v; want a network refusal with %q", err, tt.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Steps) != tt.steps {
				t.Errorf("%d steps, want %d: %+v", len(p.Steps), tt.steps, p.Steps)
			}
			if tt.note != "" && !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, tt.note) }) {
				t.Errorf("notes %q lack %q", p.Notes, tt.note)
			}
		})
	}
}

// TestManagedSecurityGroupReconciled: an existing managed group missing a
// rule gets exactly that rule; a complete one plans nothing; groups not
// tagged as the cluster's are never changed.
func TestManagedSecurityGroupReconciled(t *testing.T) {
	c, o := steadyCluster(t)
	c.Provider.AWS.ManagedSecurityGroup = true
	for i := range o.Instances {
		o.Instances[i].Config = ConfigDigest(c, o.Instances[i].Group)
	}
	managed := swarmSG("sg-m", "4789/udp")
	managed.Tags = map[string]string{providers.TagCluster: "prod", providers.TagManaged: "security-group"}
	o.Network = &providers.Network{Subnets: threeSubnets(), SecurityGroups: []providers.SecurityGroup{{ID: "sg-1"}, managed}}
	p, err := Compute(c, o, Source{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{{ID: "authorize-ingress-swarmsync-prod", Action: ActionAuthorizeIngress, Rules: []providers.Rule{{Protocol: "udp", FromPort: 4789, ToPort: 4789, SourceGroup: "sg-m"}},
		Reason: "allow 4789/udp between members (from the group itself) in swarmsync-prod"}}
	if diff := cmp.Diff(want, p.Steps); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	// Nothing is planned while the Swarm is unreachable: not even the
	// managed group's rules.
	unreachable := o
	unreachable.Swarm.Active = false
	if p, err := Compute(c, unreachable, Source{}); err != nil || len(p.Steps) != 0 {
		t.Errorf("unreachable swarm: %v, steps %+v; want none", err, p.Steps)
	}
	o.Network.SecurityGroups[1] = swarmSG("sg-m")
	o.Network.SecurityGroups[1].Tags = managed.Tags
	if p, err = Compute(c, o, Source{}); err != nil || len(p.Steps) != 0 {
		t.Errorf("complete managed group: %v, steps %+v; want none", err, p.Steps)
	}
}

func TestListeners(t *testing.T) {
	c, o := steadyCluster(t)
	const lb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/web/1"
	c.LoadBalancer = &schema.LoadBalancer{ARN: lb, Group: "web"}
	owned := map[string]string{providers.TagCluster: "prod", providers.TagManaged: "listener"}
	o.Network = &providers.Network{Subnets: threeSubnets(), SecurityGroups: []providers.SecurityGroup{swarmSG("sg-1")},
		LoadBalancer: &providers.LoadBalancer{ARN: lb, VPC: "vpc-1", Listeners: []providers.Listener{
			{ARN: "l-80", Protocol: "TCP", Port: 80, TargetGroup: "tg-80", Tags: owned},
			{ARN: "l-443", Protocol: "TCP", Port: 443, TargetGroup: "tg-443"}, // not ours
			{ARN: "l-9000", Protocol: "TCP", Port: 9000, TargetGroup: "tg-9000", Tags: owned},
		}},
		TargetGroups: []providers.TargetGroup{{ARN: "tg-80", Targets: []providers.Target{{ID: "i-w1", State: "healthy"}, {ID: "i-w2", State: "healthy"}}},
			{ARN: "tg-9000", Targets: []providers.Target{{ID: "i-w1", State: "healthy"}, {ID: "i-w2", State: "healthy"}, {ID: "i-w3", State: "healthy"}}}},
	}
	o.Ingress = &Ingress{Ports: []providers.PublishedPort{{Port: 80, Protocol: "tcp", Service: "web"}, {Port: 443, Protocol: "tcp", Service: "tls"},
		{Port: 8080, Protocol: "tcp", Service: "api"}}}
	p, err := Compute(c, o, Source{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Steps {
		got = append(got, s.ID)
	}
	want := []string{"register-targets-workers-web-i-w3", "create-listener-workers-web-tcp-8080", "delete-listener-workers-web-tcp-9000"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("steps (-want +got):\n%s", diff)
	}
	if s := p.Steps[0]; !slices.Equal(s.TargetGroups, []string{"tg-80"}) {
		t.Errorf("i-w3 is registered in %v, want only tg-80 (it is in tg-9000 already)", s.TargetGroups)
	}
	if s := p.Steps[1]; s.TargetGroupName != ListenerTargetGroupName("prod", "TCP", 8080) || !slices.Equal(s.Targets, []string{"i-w1", "i-w2", "i-w3"}) || len(s.TargetGroupName) > 32 {
		t.Errorf("create-listener %+v: want target group %s with the three web workers", s, ListenerTargetGroupName("prod", "TCP", 8080))
	}
	if s := p.Steps[2]; s.Listener != "l-9000" || !slices.Equal(s.TargetGroups, []string{"tg-9000"}) {
		t.Errorf("delete-listener %+v: want l-9000 and tg-9000", s)
	}
	if !slices.ContainsFunc(p.Notes, func(n string) bool {
		return strings.Contains(n, "Port 443 of the load balancer has a listener swarmsync did not create")
	}) {
		t.Errorf("notes %q lack the foreign listener on 443", p.Notes)
	}
}
