package observe

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

func TestNetworkQuery(t *testing.T) {
	c := schema.Cluster{Name: "prod", Provider: schema.Provider{AWS: &schema.AWSProvider{Region: "eu-west-1", ManagedSecurityGroup: true}},
		Managers: schema.Managers{Count: 1, Instance: schema.Instance{Subnets: []string{"subnet-b", "subnet-a"}, SecurityGroups: []string{"sg-1"}}},
		Workers: map[string]schema.WorkerGroup{
			"web": {Instance: schema.Instance{Subnets: []string{"subnet-a"}, SecurityGroups: []string{"sg-2", "sg-1"}}, TargetGroups: []string{"tg-2", "tg-1"}},
			"db":  {Instance: schema.Instance{Subnets: []string{"subnet-c"}}, TargetGroups: []string{"tg-1"}},
		},
		LoadBalancer: &schema.LoadBalancer{ARN: "lb-1", Group: "web"},
	}
	q, ok := NetworkQuery(c)
	if !ok {
		t.Fatal("no query for an aws cluster")
	}
	want := providers.NetworkQuery{Cluster: "prod", Subnets: []string{"subnet-a", "subnet-b", "subnet-c"}, SecurityGroups: []string{"sg-1", "sg-2"},
		OwnedSecurityGroups: true, TargetGroups: []string{"tg-1", "tg-2"}, LoadBalancer: "lb-1"}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	c.Provider = schema.Provider{Local: &schema.LocalProvider{Subnet: "10.231.0.0/24"}}
	if _, ok := NetworkQuery(c); ok {
		t.Error("a local cluster has a network query")
	}
}
