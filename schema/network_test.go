package schema

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	tgARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef"
	lbARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/web/0123456789abcdef"
	awsOK = "provider: {aws: {region: eu-west-1, managedSecurityGroup: true}}\n" +
		"managers: {count: 1, instance: {type: t, image: i, subnets: [s]}}\n"
)

// TestLoadNetwork loads the AWS environment fields: the managed security
// group, target groups per group and the load balancer.
func TestLoadNetwork(t *testing.T) {
	spec := "name: a\n" + awsOK +
		"workers: {web: {count: 2, instance: {type: t, image: i, subnets: [s]}, targetGroups: ['" + tgARN + "']}}\n" +
		"loadBalancer: {arn: '" + lbARN + "', group: web}\n"
	res, err := Load([]File{{"c.yaml", []byte(spec)}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := res.Cluster("a")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Provider.AWS.ManagedSecurityGroup {
		t.Error("managedSecurityGroup not decoded")
	}
	if diff := cmp.Diff([]string{tgARN}, c.Workers["web"].TargetGroups); diff != "" {
		t.Errorf("targetGroups (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&LoadBalancer{ARN: lbARN, Group: "web"}, c.LoadBalancer); diff != "" {
		t.Errorf("loadBalancer (-want +got):\n%s", diff)
	}
}

func TestLoadNetworkDiagnostics(t *testing.T) {
	tests := []struct {
		name, spec string
		want       []string
	}{
		{
			name: "load balancer group must be declared",
			spec: "name: a\n" + awsOK + "loadBalancer: {arn: '" + lbARN + "', group: web}\n",
			want: []string{`c.yaml:4:114: loadBalancer.group: worker group "web" is not declared; name a worker group of this cluster: its nodes receive the listeners' traffic`},
		},
		{
			name: "target groups need aws",
			spec: "name: a\nprovider: {local: {}}\nmanagers: {count: 1, targetGroups: ['" + tgARN + "']}\n",
			want: []string{`c.yaml:3:22: managers.targetGroups: target groups need provider aws; remove targetGroups, or use provider.aws`},
		},
		{
			name: "a target group ARN",
			spec: "name: a\n" + awsOK + "workers: {w: {count: 1, instance: {type: t, image: i, subnets: [s]}, targetGroups: ['" + lbARN + "']}}\n",
			want: []string{`c.yaml:4:85: workers.w.targetGroups[0]: invalid target group ARN "` + lbARN + `"; expected an ELBv2 target group ARN like arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]File{{"c.yaml", []byte(tt.spec)}})
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("Load error = %v; want Diagnostics", err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}
