package ec2conformance

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/providers"
)

// rawLaunch starts count instances with the raw SDK and returns their ids.
func rawLaunch(t *testing.T, c client, count int, subnet string, tags map[string]string) []string {
	t.Helper()
	in := &ec2.RunInstancesInput{
		ImageId: awssdk.String(image), InstanceType: types.InstanceTypeT3Micro,
		MinCount: awssdk.Int32(int32(count)), MaxCount: awssdk.Int32(int32(count)),
	}
	if subnet != "" {
		in.SubnetId = awssdk.String(subnet)
	}
	if len(tags) > 0 {
		spec := types.TagSpecification{ResourceType: types.ResourceTypeInstance}
		for k, v := range tags {
			spec.Tags = append(spec.Tags, types.Tag{Key: awssdk.String(k), Value: awssdk.String(v)})
		}
		in.TagSpecifications = []types.TagSpecification{spec}
	}
	out, err := c.raw.RunInstances(context.Background(), in)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	var ids []string
	for _, i := range out.Instances {
		ids = append(ids, awssdk.ToString(i.InstanceId))
	}
	return ids
}

// describeIDs describes ids with the raw SDK.
func describeIDs(t *testing.T, c client, ids []string) map[string]types.Instance {
	t.Helper()
	out := map[string]types.Instance{}
	p := ec2.NewDescribeInstancesPaginator(c.raw, &ec2.DescribeInstancesInput{InstanceIds: ids})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("DescribeInstances: %v", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				out[awssdk.ToString(i.InstanceId)] = i
			}
		}
	}
	return out
}

// filterIDs runs a filtered DescribeInstances and returns the ids, sorted.
func filterIDs(t *testing.T, c client, filters []types.Filter) []string {
	t.Helper()
	var ids []string
	p := ec2.NewDescribeInstancesPaginator(c.raw, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: awssdk.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("DescribeInstances: %v", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				ids = append(ids, awssdk.ToString(i.InstanceId))
			}
		}
	}
	sort.Strings(ids)
	return ids
}

func ids(in []providers.Instance) []string {
	var out []string
	for _, i := range in {
		out = append(out, i.ID)
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func f(name string, values ...string) types.Filter {
	return types.Filter{Name: awssdk.String(name), Values: values}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestLaunchTagsAndSpread(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := b.clients(t)
		ctx := context.Background()
		cluster := unique("launch")
		req := providers.LaunchRequest{
			Cluster: cluster, Group: "workers/general", Count: 5,
			Image: image, InstanceType: "t3.micro", Subnets: b.subnets[:2],
			Tags:             map[string]string{providers.TagConfig: "cfg-1", providers.TagName: cluster + "-general"},
			UserData:         []byte("#!/bin/sh\necho hello\n"),
			IdempotencyToken: cluster + "/step-1",
		}
		launched, err := c.cloud.Launch(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.rec.Count("RunInstances"); got != 2 {
			t.Errorf("RunInstances calls = %d, want 2 (one per subnet)", got)
		}
		if len(launched) != 5 {
			t.Fatalf("launched %d instances, want 5", len(launched))
		}
		perSubnet := map[string]int{}
		for _, i := range describeIDs(t, c, ids(launched)) {
			perSubnet[awssdk.ToString(i.SubnetId)]++
		}
		if diff := cmp.Diff(map[string]int{b.subnets[0]: 3, b.subnets[1]: 2}, perSubnet); diff != "" {
			t.Errorf("instances per subnet (-want +got):\n%s", diff)
		}

		c.rec.Reset()
		got, err := c.cloud.Instances(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		if n := c.rec.Count("DescribeInstances"); n != 1 {
			t.Errorf("DescribeInstances calls = %d, want 1", n)
		}
		if diff := cmp.Diff(ids(launched), ids(got)); diff != "" {
			t.Errorf("observed ids (-launched +observed):\n%s", diff)
		}
		for _, i := range got {
			if i.Cluster != cluster || i.Group != "workers/general" || i.Config != "cfg-1" || i.Tags[providers.TagName] != cluster+"-general" {
				t.Errorf("%s: cluster/group/config/name = %q/%q/%q/%q", i.ID, i.Cluster, i.Group, i.Config, i.Tags[providers.TagName])
			}
			if i.PrivateIP == "" || i.Zone == "" || i.LaunchedAt.IsZero() {
				t.Errorf("%s: private IP %q, zone %q, launched %v: want all set", i.ID, i.PrivateIP, i.Zone, i.LaunchedAt)
			}
			if i.State != providers.StatePending && i.State != providers.StateRunning {
				t.Errorf("%s: state %q, want pending or running", i.ID, i.State)
			}
		}
	})
}

func TestInstancesOnlyOwned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := b.clients(t)
		ctx := context.Background()
		cluster := unique("owned")
		mine := rawLaunch(t, c, 2, "", map[string]string{providers.TagCluster: cluster, providers.TagGroup: "managers"})
		rawLaunch(t, c, 1, "", map[string]string{providers.TagCluster: cluster + "-other"})
		rawLaunch(t, c, 1, "", map[string]string{"Name": cluster})
		rawLaunch(t, c, 1, "", nil)
		c.rec.Reset()
		got, err := c.cloud.Instances(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sorted(mine...), ids(got)); diff != "" {
			t.Errorf("owned instances (-want +got):\n%s", diff)
		}
		if n := c.rec.Count("DescribeInstances"); n != 1 {
			t.Errorf("DescribeInstances calls = %d, want 1", n)
		}
		forms := c.rec.Forms("DescribeInstances")
		if len(forms) == 1 && (forms[0].Get("Filter.1.Name") != "tag:"+providers.TagCluster || forms[0].Get("MaxResults") != "1000") {
			t.Errorf("DescribeInstances form = %v, want the cluster tag filter and MaxResults 1000", forms[0])
		}
	})
}

func TestFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := b.clients(t)
		run := unique("filters")
		web := rawLaunch(t, c, 1, "", map[string]string{"run": run, "role": "web"})[0]
		db := rawLaunch(t, c, 1, "", map[string]string{"run": run, "role": "db"})[0]
		cache := rawLaunch(t, c, 1, "", map[string]string{"run": run, "role": "webcache", "extra": "yes"})[0]
		if _, err := c.raw.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{cache}}); err != nil {
			t.Fatal(err)
		}
		scope := f("tag:run", run)
		tests := []struct {
			name    string
			filters []types.Filter
			want    []string
		}{
			{"tag exact", []types.Filter{scope, f("tag:role", "web")}, sorted(web)},
			{"tag star wildcard", []types.Filter{scope, f("tag:role", "web*")}, sorted(web, cache)},
			{"tag question wildcard", []types.Filter{scope, f("tag:role", "w?b")}, sorted(web)},
			{"OR within a filter", []types.Filter{scope, f("tag:role", "web", "db")}, sorted(web, db)},
			{"AND across filters", []types.Filter{scope, f("tag:role", "web*"), f("instance-state-name", "running", "pending")}, sorted(web)},
			{"tag-key", []types.Filter{scope, f("tag-key", "extra")}, sorted(cache)},
			{"state terminated", []types.Filter{scope, f("instance-state-name", "terminated", "shutting-down")}, sorted(cache)},
			{"instance-id", []types.Filter{scope, f("instance-id", db)}, sorted(db)},
			{"no match", []types.Filter{scope, f("tag:role", "nothing")}, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, filterIDs(t, c, tc.filters)); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestPagination(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := b.clients(t)
		run := unique("pages")
		var want []string
		for range 7 {
			want = append(want, rawLaunch(t, c, 1, "", map[string]string{"run": run})...)
		}
		seen := map[string]int{}
		pages := 0
		p := ec2.NewDescribeInstancesPaginator(c.raw, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{f("tag:run", run)}, MaxResults: awssdk.Int32(5),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, r := range page.Reservations {
				for _, i := range r.Instances {
					seen[awssdk.ToString(i.InstanceId)]++
				}
			}
		}
		if pages != 2 {
			t.Errorf("pages = %d, want 2 for 7 instances at MaxResults 5", pages)
		}
		var got []string
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s seen %d times", id, n)
			}
			got = append(got, id)
		}
		if diff := cmp.Diff(sorted(want...), sorted(got...)); diff != "" {
			t.Errorf("paged ids (-want +got):\n%s", diff)
		}
	})
}

func TestTerminateAndStates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := b.clients(t)
		ctx := context.Background()
		cluster := unique("term")
		launched, err := c.cloud.Launch(ctx, providers.LaunchRequest{
			Cluster: cluster, Group: "managers", Count: 3, Image: image, InstanceType: "t3.micro",
			Subnets: b.subnets[:1], IdempotencyToken: cluster + "/launch",
		})
		if err != nil {
			t.Fatal(err)
		}
		all := ids(launched)
		c.rec.Reset()
		if err := c.cloud.Terminate(ctx, cluster, all[:2]); err != nil {
			t.Fatal(err)
		}
		if n := c.rec.Count("TerminateInstances"); n != 1 {
			t.Errorf("TerminateInstances calls = %d, want 1", n)
		}
		codes := map[string]int32{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
		for id, i := range describeIDs(t, c, all) {
			name, code := string(i.State.Name), awssdk.ToInt32(i.State.Code)&0xff
			if codes[name] != code {
				t.Errorf("%s: state %q has code %d, want %d", id, name, code, codes[name])
			}
			gone := name == "terminated" || name == "shutting-down"
			if wantGone := id != all[2]; gone != wantGone {
				t.Errorf("%s: state %q, terminated = %v, want %v", id, name, gone, wantGone)
			}
		}
		got, err := c.cloud.Instances(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(all, ids(got)); diff != "" {
			t.Errorf("terminated instances must stay visible (-want +got):\n%s", diff)
		}
		// Terminating what is already terminated is a no-op.
		c.rec.Reset()
		if err := c.cloud.Terminate(ctx, cluster, all[:1]); err != nil {
			t.Fatal(err)
		}
		if n := c.rec.Count("TerminateInstances"); n != 0 {
			t.Errorf("TerminateInstances calls for an already terminated instance = %d, want 0", n)
		}
	})
}

func TestTerminateRefusesOthers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := b.clients(t)
		ctx := context.Background()
		cluster := unique("refuse")
		own := rawLaunch(t, c, 1, "", map[string]string{providers.TagCluster: cluster})[0]
		foreign := rawLaunch(t, c, 1, "", map[string]string{providers.TagCluster: cluster + "x"})[0]
		untagged := rawLaunch(t, c, 1, "", nil)[0]
		unknown := "i-0123456789abcdef0"
		tests := []struct {
			name string
			ids  []string
			want []string // substrings of the error
		}{
			{"foreign cluster", []string{own, foreign}, []string{"not tagged", foreign}},
			{"untagged", []string{untagged, own}, []string{"not tagged", untagged}},
			{"unknown id", []string{own, unknown}, []string{"not found", unknown}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c.rec.Reset()
				err := c.cloud.Terminate(ctx, cluster, tc.ids)
				if err == nil {
					t.Fatal("Terminate succeeded, want a refusal")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				if n := c.rec.Count("TerminateInstances"); n != 0 {
					t.Errorf("TerminateInstances calls = %d, want 0 (refuse before acting)", n)
				}
			})
		}
		for id, i := range describeIDs(t, c, []string{own, foreign, untagged}) {
			if s := i.State.Name; s != types.InstanceStateNameRunning && s != types.InstanceStateNamePending {
				t.Errorf("%s is %s after refused terminations, want it live", id, s)
			}
		}
	})
}

func TestErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := b.clients(t)
		ctx := context.Background()
		unknown := "i-0123456789abcdef0"
		tests := []struct {
			name string
			call func() error
			code string
		}{
			{"describe unknown id", func() error {
				_, err := c.raw.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{unknown}})
				return err
			}, "InvalidInstanceID.NotFound"},
			{"terminate unknown id", func() error {
				_, err := c.raw.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{unknown}})
				return err
			}, "InvalidInstanceID.NotFound"},
			{"ids with MaxResults", func() error {
				_, err := c.raw.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{unknown}, MaxResults: awssdk.Int32(5)})
				return err
			}, "InvalidParameterCombination"},
			{"unknown subnet", func() error {
				_, err := c.raw.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: awssdk.String(image), MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1), SubnetId: awssdk.String("subnet-0123456789abcdef0")})
				return err
			}, "InvalidSubnetID.NotFound"},
			{"bad user data", func() error {
				_, err := c.raw.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: awssdk.String(image), MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1), UserData: awssdk.String("%%%%")})
				return err
			}, "InvalidUserData.Malformed"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if got := apiCode(tc.call()); got != tc.code {
					t.Errorf("error code = %q, want %q", got, tc.code)
				}
			})
		}
		t.Run("provider names the action", func(t *testing.T) {
			_, err := c.cloud.Launch(ctx, providers.LaunchRequest{
				Cluster: "errs", Group: "managers", Count: 1, Image: image, InstanceType: "t3.micro",
				Subnets: []string{"subnet-0123456789abcdef0"}, IdempotencyToken: unique("errs"),
			})
			if err == nil || !strings.Contains(err.Error(), "RunInstances") || apiCode(err) != "InvalidSubnetID.NotFound" {
				t.Errorf("Launch error = %v, want RunInstances and InvalidSubnetID.NotFound", err)
			}
		})
	})
}
