package aws

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/providers"
)

const (
	accessKey = "AKIDPROVIDERTEST"
	secretKey = "provider-test-secret-key-0123456789"
)

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestMain(m *testing.M) {
	// Loopback only: never ask the instance metadata service, never read
	// the user's AWS files.
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Exit(m.Run())
}

// env is the provider wired to an emulator over real HTTP, both on one
// virtual clock, with a recorder counting what goes over the wire.
type env struct {
	sim   *ec2sim.Server
	rec   *ec2sim.Recorder
	cloud *Cloud
	clock *ec2sim.VirtualClock
}

func newEnv(tb testing.TB, simOpts ec2sim.Options, mod func(*Options)) env {
	tb.Helper()
	clock := ec2sim.NewVirtualClock(start)
	if simOpts.Clock == nil {
		simOpts.Clock = clock
	}
	sim, err := ec2sim.New(simOpts)
	if err != nil {
		tb.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sim.Close() })
	rec := &ec2sim.Recorder{}
	opts := Options{
		Region: "us-east-1", Endpoint: sim.URL(),
		HTTPClient:  &http.Client{Transport: rec, Timeout: 30 * time.Second},
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		Clock:       clock,
		Backoff:     func(int) time.Duration { return time.Millisecond },
	}
	if mod != nil {
		mod(&opts)
	}
	cloud, err := New(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return env{sim: sim, rec: rec, cloud: cloud, clock: clock}
}

func subnets() []string {
	var out []string
	for _, s := range ec2sim.DefaultSubnets {
		out = append(out, s.ID)
	}
	return out
}

func request(cluster string, count int, token string) providers.LaunchRequest {
	return providers.LaunchRequest{
		Cluster: cluster, Group: "workers/general", Count: count,
		Image: "ami-12345678", InstanceType: "t3.micro", Subnets: subnets(),
		Tags:             map[string]string{providers.TagConfig: "cfg-1", providers.TagName: cluster + "-general"},
		IdempotencyToken: token,
	}
}

func ids(in []providers.Instance) []string {
	var out []string
	for _, i := range in {
		out = append(out, i.ID)
	}
	sort.Strings(out)
	return out
}

func TestObserveCallBudget(t *testing.T) {
	tests := []struct {
		name      string
		n, others int
		calls     int
	}{
		{"none", 0, 0, 1},
		{"one", 1, 0, 1},
		{"exactly one page", 1000, 0, 1},
		{"one more than a page", 1001, 0, 2},
		{"2500 beside another cluster", 2500, 1500, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ec2sim.Options{}, nil)
			ctx := context.Background()
			var want []string
			if tc.n > 0 {
				got, err := e.cloud.Launch(ctx, request("budget", tc.n, "budget/1"))
				if err != nil {
					t.Fatal(err)
				}
				want = ids(got)
			}
			if tc.others > 0 {
				if _, err := e.cloud.Launch(ctx, request("neighbour", tc.others, "neighbour/1")); err != nil {
					t.Fatal(err)
				}
			}
			e.rec.Reset()
			e.sim.ResetCounts()
			got, err := e.cloud.Instances(ctx, "budget")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, ids(got)); diff != "" {
				t.Errorf("observed (-want +got):\n%s", diff)
			}
			if n := e.rec.Count("DescribeInstances"); n != tc.calls {
				t.Errorf("DescribeInstances requests sent = %d, want ⌈%d/1000⌉ = %d", n, tc.n, tc.calls)
			}
			if diff := cmp.Diff(map[string]int{"DescribeInstances": tc.calls}, e.sim.CallCounts()); diff != "" {
				t.Errorf("requests the emulator saw (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLaunchRequestShape(t *testing.T) {
	e := newEnv(t, ec2sim.Options{}, nil)
	req := request("shape", 4, "plan-abc/step-3")
	req.SecurityGroups = []string{"sg-0123456789abcdef0"}
	req.InstanceProfile = "swarm-node"
	req.KeyName = "ops"
	req.UserData = []byte("#!/bin/sh\ndockerd --label swarmsync.instance=...\n")
	got, err := e.cloud.Launch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("launched %d, want 4", len(got))
	}
	forms := e.rec.Forms("RunInstances")
	if len(forms) != 3 {
		t.Fatalf("RunInstances calls = %d, want 3 (one per subnet)", len(forms))
	}
	tokens := map[string]bool{}
	for i, f := range forms {
		subnet := subnets()[i]
		wantCount := map[int]string{0: "2", 1: "1", 2: "1"}[i]
		checks := map[string]string{
			"SubnetId": subnet, "MinCount": wantCount, "MaxCount": wantCount,
			"ClientToken":                     ClientToken(req.IdempotencyToken, subnet),
			"TagSpecification.1.ResourceType": "instance",
			"TagSpecification.2.ResourceType": "volume",
			"IamInstanceProfile.Name":         "swarm-node",
			"KeyName":                         "ops",
			"SecurityGroupId.1":               "sg-0123456789abcdef0",
			"ImageId":                         "ami-12345678",
			"InstanceType":                    "t3.micro",
		}
		for k, v := range checks {
			if got := f.Get(k); got != v {
				t.Errorf("call %d: %s = %q, want %q", i+1, k, got, v)
			}
		}
		tok := f.Get("ClientToken")
		if len(tok) > 64 || tokens[tok] {
			t.Errorf("call %d: ClientToken %q is too long or repeated", i+1, tok)
		}
		tokens[tok] = true
		ud, err := base64.StdEncoding.DecodeString(f.Get("UserData"))
		if err != nil || !bytes.Equal(ud, req.UserData) {
			t.Errorf("call %d: user data does not round-trip (%v)", i+1, err)
		}
		for spec := 1; spec <= 2; spec++ {
			tags := map[string]string{}
			for j := 1; f.Has(fmt.Sprintf("TagSpecification.%d.Tag.%d.Key", spec, j)); j++ {
				tags[f.Get(fmt.Sprintf("TagSpecification.%d.Tag.%d.Key", spec, j))] = f.Get(fmt.Sprintf("TagSpecification.%d.Tag.%d.Value", spec, j))
			}
			want := map[string]string{providers.TagCluster: "shape", providers.TagGroup: "workers/general", providers.TagConfig: "cfg-1", providers.TagName: "shape-general"}
			if diff := cmp.Diff(want, tags); diff != "" {
				t.Errorf("call %d, tag spec %d (-want +got):\n%s", i+1, spec, diff)
			}
		}
	}
	for _, in := range e.sim.Instances() {
		if in.InstanceProfile != "swarm-node" || in.KeyName != "ops" || len(in.SecurityGroups) != 1 || in.Tags[providers.TagCluster] != "shape" {
			t.Errorf("%s arrived as profile %q key %q groups %v tags %v", in.ID, in.InstanceProfile, in.KeyName, in.SecurityGroups, in.Tags)
		}
	}
}

func TestLaunchIdempotent(t *testing.T) {
	e := newEnv(t, ec2sim.Options{}, nil)
	ctx := context.Background()
	first, err := e.cloud.Launch(ctx, request("idem", 4, "plan-1/step-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.cloud.Launch(ctx, request("idem", 4, "plan-1/step-1"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids(first), ids(again)); diff != "" {
		t.Errorf("a repeated launch returned other instances (-first +again):\n%s", diff)
	}
	if n := len(e.sim.Instances()); n != 4 {
		t.Errorf("emulator holds %d instances, want 4", n)
	}
	_, err = e.cloud.Launch(ctx, request("idem", 5, "plan-1/step-1"))
	if err == nil || !strings.Contains(err.Error(), "IdempotentParameterMismatch") || !strings.Contains(err.Error(), "RunInstances") {
		t.Errorf("same token, other count: err = %v, want IdempotentParameterMismatch from RunInstances", err)
	}
}

func TestLaunchValidation(t *testing.T) {
	e := newEnv(t, ec2sim.Options{}, nil)
	tests := []struct {
		name string
		mod  func(*providers.LaunchRequest)
		want string
	}{
		{"no token", func(r *providers.LaunchRequest) { r.IdempotencyToken = "" }, "idempotency token"},
		{"zero count", func(r *providers.LaunchRequest) { r.Count = 0 }, "at least 1"},
		{"no image", func(r *providers.LaunchRequest) { r.Image = "" }, "instance.image"},
		{"no type", func(r *providers.LaunchRequest) { r.InstanceType = "" }, "instance.type"},
		{"wildcard cluster", func(r *providers.LaunchRequest) { r.Cluster = "prod*" }, "wildcard"},
		{"contradicting tag", func(r *providers.LaunchRequest) { r.Tags[providers.TagCluster] = "other" }, "contradicts"},
		{"repeated subnet", func(r *providers.LaunchRequest) { r.Subnets = []string{"subnet-a", "subnet-a"} }, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.rec.Reset()
			req := request("valid", 2, "t")
			tc.mod(&req)
			_, err := e.cloud.Launch(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
			if n := e.rec.Count("RunInstances"); n != 0 {
				t.Errorf("RunInstances sent %d times for a bad request", n)
			}
		})
	}
}

func TestThrottlingStorm(t *testing.T) {
	e := newEnv(t, ec2sim.Options{}, nil)
	// Three of every four requests of every action are throttled.
	e.sim.AddFault(func(action string, n int) *ec2sim.APIError {
		if n%4 != 0 {
			return ec2sim.Throttled()
		}
		return nil
	})
	ctx := context.Background()
	launched, err := e.cloud.Launch(ctx, request("storm", 9, "storm/1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.cloud.Instances(ctx, "storm")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids(launched), ids(got)); diff != "" {
		t.Errorf("observed (-launched +observed):\n%s", diff)
	}
	if err := e.cloud.Terminate(ctx, "storm", ids(launched)); err != nil {
		t.Fatal(err)
	}
	for _, in := range e.sim.Instances() {
		if in.State != ec2sim.StateTerminated {
			t.Errorf("%s is %s, want terminated", in.ID, in.State)
		}
	}
	if n := len(e.sim.Instances()); n != 9 {
		t.Errorf("emulator holds %d instances, want 9 (retried launches must not duplicate)", n)
	}
	for _, a := range []string{"RunInstances", "DescribeInstances", "TerminateInstances"} {
		if e.sim.ThrottledCalls(a) == 0 {
			t.Errorf("no %s request was throttled: the storm did not happen", a)
		}
	}
}

func TestRetriesExhausted(t *testing.T) {
	e := newEnv(t, ec2sim.Options{}, func(o *Options) { o.MaxAttempts = 3 })
	e.sim.ThrottleNext("DescribeInstances", 100)
	_, err := e.cloud.Instances(context.Background(), "tired")
	if err == nil || !strings.Contains(err.Error(), "DescribeInstances") || !strings.Contains(err.Error(), "RequestLimitExceeded") {
		t.Errorf("err = %v, want it to name DescribeInstances and RequestLimitExceeded", err)
	}
	if n := e.sim.Calls("DescribeInstances"); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
}

func TestRetries5xx(t *testing.T) {
	e := newEnv(t, ec2sim.Options{}, nil)
	left := 3
	e.sim.AddFault(func(action string, _ int) *ec2sim.APIError {
		if left > 0 {
			left--
			return &ec2sim.APIError{Status: http.StatusInternalServerError, Code: "InternalError", Message: "An internal error has occurred"}
		}
		return nil
	})
	if _, err := e.cloud.Instances(context.Background(), "fivexx"); err != nil {
		t.Errorf("after 3 InternalErrors: %v", err)
	}
	if n := e.sim.Calls("DescribeInstances"); n != 4 {
		t.Errorf("attempts = %d, want 4", n)
	}
}

func TestRunInstancesBudget(t *testing.T) {
	tests := []struct {
		name      string
		budgets   map[string]Rate
		throttled bool
	}{
		{"published budget", nil, false},
		{"no client budget", map[string]Rate{"RunInstances": {Burst: 1000, PerSecond: 1000}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ec2sim.Options{RunInstancesRate: &ec2sim.RunInstancesBudget}, func(o *Options) {
				o.Budgets = tc.budgets
				o.MaxAttempts = 2
			})
			var failed error
			for i := range 12 {
				req := request("budget", 1, fmt.Sprintf("budget/%d", i))
				req.Subnets = req.Subnets[:1]
				if _, err := e.cloud.Launch(context.Background(), req); err != nil {
					failed = err
				}
			}
			throttled := e.sim.ThrottledCalls("RunInstances")
			if (throttled > 0) != tc.throttled {
				t.Errorf("throttled RunInstances = %d (last error %v), want throttled = %v", throttled, failed, tc.throttled)
			}
			if !tc.throttled {
				if failed != nil {
					t.Errorf("launch failed within the budget: %v", failed)
				}
				// 5 at once, then 7 more at +2/s: at least 3.5 s of waiting.
				if slept := e.clock.Slept(); slept < 3500*time.Millisecond {
					t.Errorf("limiter waited %v, want ≥ 3.5s", slept)
				}
			}
		})
	}
}

// A launch of more than LaunchBatch instances per subnet is split into
// calls of at most 1,000, each with its own ClientToken: a repeat launches
// nothing more.
func TestLaunchBatches(t *testing.T) {
	e := newEnv(t, ec2sim.Options{}, nil)
	ctx := context.Background()
	launched, err := e.cloud.Launch(ctx, request("big", 3003, "big/1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(launched) != 3003 {
		t.Fatalf("launched %d, want 3003", len(launched))
	}
	forms := e.rec.Forms("RunInstances")
	if len(forms) != 6 {
		t.Errorf("RunInstances calls = %d, want 6 (3 subnets × ⌈1001/1000⌉)", len(forms))
	}
	tokens := map[string]bool{}
	total := 0
	for i, f := range forms {
		n, _ := strconv.Atoi(f.Get("MaxCount"))
		if n > LaunchBatch || n < 1 {
			t.Errorf("call %d asks for %d instances", i+1, n)
		}
		total += n
		tokens[f.Get("ClientToken")] = true
	}
	if total != 3003 || len(tokens) != 6 {
		t.Errorf("calls ask for %d instances with %d distinct tokens, want 3003 and 6", total, len(tokens))
	}
	again, err := e.cloud.Launch(ctx, request("big", 3003, "big/1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 3003 || len(e.sim.Instances()) != 3003 {
		t.Errorf("a repeated launch returned %d and the emulator holds %d, want 3003 and 3003", len(again), len(e.sim.Instances()))
	}
}

func TestTerminateBatches(t *testing.T) {
	e := newEnv(t, ec2sim.Options{}, nil)
	ctx := context.Background()
	launched, err := e.cloud.Launch(ctx, request("big", 2500, "big/1"))
	if err != nil {
		t.Fatal(err)
	}
	e.rec.Reset()
	if err := e.cloud.Terminate(ctx, "big", ids(launched)); err != nil {
		t.Fatal(err)
	}
	forms := e.rec.Forms("TerminateInstances")
	if len(forms) != 3 {
		t.Errorf("TerminateInstances calls = %d, want 3", len(forms))
	}
	for i, f := range forms {
		if f.Has("InstanceId.1001") {
			t.Errorf("call %d carries more than 1000 ids", i+1)
		}
	}
	if n := e.rec.Count("DescribeInstances"); n != 13 {
		t.Errorf("ownership checks = %d DescribeInstances, want ⌈2500/200⌉ = 13", n)
	}
	for _, in := range e.sim.Instances() {
		if in.State != ec2sim.StateTerminated {
			t.Fatalf("%s is %s, want terminated", in.ID, in.State)
		}
	}
}

func TestSecretsStayOut(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, ec2sim.Options{}, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.MaxAttempts = 2
	})
	ctx := context.Background()
	userSecret := "SWMTKN-1-joinsecret"
	req := request("secret", 2, "secret/1")
	req.UserData = []byte("docker swarm join --token " + userSecret)
	var errs []error
	_, err := e.cloud.Launch(ctx, req)
	errs = append(errs, err)
	_, err = e.cloud.Instances(ctx, "secret")
	errs = append(errs, err)
	req.Count = 4 // 2 in the first subnet instead of 1: IdempotentParameterMismatch
	_, err = e.cloud.Launch(ctx, req)
	errs = append(errs, err)
	e.sim.ThrottleNext("", 100)
	_, err = e.cloud.Instances(ctx, "secret")
	errs = append(errs, err)
	errs = append(errs, e.cloud.Terminate(ctx, "secret", []string{"i-0123456789abcdef0"}))
	var text strings.Builder
	text.WriteString(logs.String())
	failures := 0
	for _, err := range errs {
		if err != nil {
			failures++
			text.WriteString(err.Error())
		}
	}
	if failures != 3 || logs.Len() == 0 {
		t.Fatalf("want 3 failures and some logs to inspect, got %d failures, %d bytes of logs", failures, logs.Len())
	}
	for _, s := range []string{secretKey, accessKey, userSecret, base64.StdEncoding.EncodeToString(req.UserData)} {
		if strings.Contains(text.String(), s) {
			t.Errorf("logs or errors contain a secret %q:\n%s", s, text.String())
		}
	}
}

func TestDefaultChainAndEndpointEnv(t *testing.T) {
	sim, err := ec2sim.New(ec2sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_ENDPOINT_URL_EC2", sim.URL())

	t.Run("env endpoint and credentials", func(t *testing.T) {
		t.Setenv("AWS_REGION", "eu-west-1")
		cloud, err := New(context.Background(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cloud.Instances(context.Background(), "envchain"); err != nil {
			t.Fatal(err)
		}
		if n := sim.Calls("DescribeInstances"); n != 1 {
			t.Errorf("the emulator named by AWS_ENDPOINT_URL_EC2 saw %d DescribeInstances, want 1", n)
		}
	})
	t.Run("no region", func(t *testing.T) {
		t.Setenv("AWS_REGION", "")
		t.Setenv("AWS_DEFAULT_REGION", "")
		_, err := New(context.Background(), Options{})
		if err == nil || !strings.Contains(err.Error(), "region") {
			t.Errorf("err = %v, want a missing-region error", err)
		}
	})
}

func TestSpread(t *testing.T) {
	tests := []struct {
		name    string
		count   int
		subnets []string
		want    []batch
	}{
		{"no subnets", 3, nil, []batch{{Count: 3}}},
		{"even", 4, []string{"a", "b"}, []batch{{"a", 2, 0}, {"b", 2, 0}}},
		{"remainder to the first", 5, []string{"a", "b", "c"}, []batch{{"a", 2, 0}, {"b", 2, 0}, {"c", 1, 0}}},
		{"fewer than subnets", 2, []string{"a", "b", "c"}, []batch{{"a", 1, 0}, {"b", 1, 0}}},
		{"one full call per subnet", 2000, []string{"a", "b"}, []batch{{"a", 1000, 0}, {"b", 1000, 0}}},
		{"at most 1000 per call", 2500, []string{"a", "b"}, []batch{{"a", 1000, 0}, {"a", 250, 1}, {"b", 1000, 0}, {"b", 250, 1}}},
		{"no subnets, 2001", 2001, nil, []batch{{"", 1000, 0}, {"", 1000, 1}, {"", 1, 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, spread(tc.count, tc.subnets)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestClientToken(t *testing.T) {
	long := strings.Repeat("x", 500)
	a, b, c := ClientToken(long, "subnet-a"), ClientToken(long, "subnet-b"), ClientToken(long+"y", "subnet-a")
	if a != ClientToken(long, "subnet-a") {
		t.Error("ClientToken is not deterministic")
	}
	if a == b || a == c {
		t.Errorf("tokens collide: %q %q %q", a, b, c)
	}
	for _, tok := range []string{a, b, c} {
		if len(tok) > 64 {
			t.Errorf("token %q is %d characters, want ≤ 64", tok, len(tok))
		}
		for _, r := range tok {
			if r > 127 {
				t.Errorf("token %q is not ASCII", tok)
			}
		}
	}
}

func TestBucket(t *testing.T) {
	clock := ec2sim.NewVirtualClock(start)
	b := newBucket(Rate{Burst: 5, PerSecond: 2}, clock.Now())
	ctx := context.Background()
	for range 5 {
		if err := b.wait(ctx, clock, 1); err != nil {
			t.Fatal(err)
		}
	}
	if clock.Slept() != 0 {
		t.Errorf("the burst waited %v, want 0", clock.Slept())
	}
	for range 4 {
		if err := b.wait(ctx, clock, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := clock.Slept(); got != 2*time.Second {
		t.Errorf("4 requests past the burst at 2/s waited %v, want 2s", got)
	}
	if err := b.wait(ctx, clock, 6); err == nil {
		t.Error("taking more than the burst succeeded, want an error")
	}
}

// BenchmarkObserve5000 observes 5,000 instances through the provider
// against the emulator over loopback HTTP.
func BenchmarkObserve5000(b *testing.B) {
	var subs []ec2sim.Subnet
	for i := range 5 {
		subs = append(subs, ec2sim.Subnet{ID: fmt.Sprintf("subnet-0b000000000000%03d", i), Zone: fmt.Sprintf("us-east-1%c", 'a'+i), CIDR: fmt.Sprintf("10.1.%d.0/20", 16*i)})
	}
	e := newEnv(b, ec2sim.Options{Subnets: subs}, func(o *Options) {
		o.Budgets = map[string]Rate{"DescribeInstances": {Burst: 1e9, PerSecond: 1e9}}
	})
	ctx := context.Background()
	req := request("bench", 5000, "bench/1")
	req.Subnets = nil
	for _, s := range subs { // 5 batches of 1000
		req.Subnets = append(req.Subnets, s.ID)
	}
	if _, err := e.cloud.Launch(ctx, req); err != nil {
		b.Fatal(err)
	}
	e.rec.Reset()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		got, err := e.cloud.Instances(ctx, "bench")
		if err != nil || len(got) != 5000 {
			b.Fatalf("observed %d, err %v", len(got), err)
		}
		n++
	}
	b.ReportMetric(float64(e.rec.Count("DescribeInstances"))/float64(n), "calls/op")
}
