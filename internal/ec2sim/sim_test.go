package ec2sim

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"
)

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestMain(m *testing.M) {
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

// newSim starts an emulator on loopback and a raw SDK client for it that
// makes exactly one attempt per call.
func newSim(t *testing.T, opts Options) (*Server, *ec2.Client) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := ec2.New(ec2.Options{
		Region: "us-east-1", BaseEndpoint: awssdk.String(s.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSIM", "sim-secret", ""),
		Retryer:     retry.AddWithMaxAttempts(retry.NewStandard(), 1),
	})
	return s, c
}

func run(c *ec2.Client, token, instanceType string, count int32) (*ec2.RunInstancesOutput, error) {
	in := &ec2.RunInstancesInput{
		ImageId: awssdk.String("ami-12345678"), InstanceType: types.InstanceType(instanceType),
		MinCount: awssdk.Int32(count), MaxCount: awssdk.Int32(count),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance,
			Tags: []types.Tag{{Key: awssdk.String("k"), Value: awssdk.String("v")}}}},
	}
	if token != "" {
		in.ClientToken = awssdk.String(token)
	}
	return c.RunInstances(context.Background(), in)
}

func mustRun(t *testing.T, c *ec2.Client, count int32) []string {
	t.Helper()
	out, err := run(c, "", "t3.micro", count)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range out.Instances {
		ids = append(ids, *i.InstanceId)
	}
	return ids
}

func states(t *testing.T, c *ec2.Client, ids ...string) []string {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			got = append(got, string(i.State.Name))
		}
	}
	return got
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestClientTokenIdempotency(t *testing.T) {
	s, c := newSim(t, Options{})
	first, err := run(c, "tok-1", "t3.micro", 3)
	if err != nil {
		t.Fatal(err)
	}
	again, err := run(c, "tok-1", "t3.micro", 3)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(o *ec2.RunInstancesOutput) []string {
		var out []string
		for _, i := range o.Instances {
			out = append(out, *i.InstanceId)
		}
		return out
	}
	if *first.ReservationId != *again.ReservationId {
		t.Errorf("reservation %s then %s, want the same", *first.ReservationId, *again.ReservationId)
	}
	if diff := cmp.Diff(ids(first), ids(again)); diff != "" {
		t.Errorf("instances of the repeated launch (-first +again):\n%s", diff)
	}
	if n := len(s.Instances()); n != 3 {
		t.Errorf("emulator holds %d instances, want 3", n)
	}
	_, err = run(c, "tok-1", "m5.large", 3)
	if code(err) != "IdempotentParameterMismatch" || status(err) != http.StatusBadRequest {
		t.Errorf("same token, other parameters: err = %v, want IdempotentParameterMismatch (400)", err)
	}
	if _, err := run(c, "tok-2", "m5.large", 3); err != nil {
		t.Errorf("new token: %v", err)
	}
}

func TestLifecycleOnClock(t *testing.T) {
	clock := NewVirtualClock(start)
	s, c := newSim(t, Options{Clock: clock, PendingFor: 30 * time.Second, ShuttingDownFor: 10 * time.Second})
	out, err := run(c, "", "t3.micro", 1)
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Instances[0].InstanceId
	if got := string(out.Instances[0].State.Name); got != StatePending {
		t.Errorf("RunInstances state = %s, want pending", got)
	}
	steps := []struct {
		advance time.Duration
		want    string
	}{
		{0, StatePending},
		{29 * time.Second, StatePending},
		{time.Second, StateRunning},
	}
	for _, st := range steps {
		clock.Advance(st.advance)
		if diff := cmp.Diff([]string{st.want}, states(t, c, id)); diff != "" {
			t.Errorf("at +%v (-want +got):\n%s", clock.Now().Sub(start), diff)
		}
	}
	term, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if cur, prev := term.TerminatingInstances[0].CurrentState.Name, term.TerminatingInstances[0].PreviousState.Name; cur != StateShuttingDown || prev != StateRunning {
		t.Errorf("terminate: %s → %s, want running → shutting-down", prev, cur)
	}
	clock.Advance(10 * time.Second)
	if diff := cmp.Diff([]string{StateTerminated}, states(t, c, id)); diff != "" {
		t.Errorf("after shutdown (-want +got):\n%s", diff)
	}
	clock.Advance(59 * time.Minute)
	if len(s.Instances()) != 1 {
		t.Errorf("terminated instance gone before an hour")
	}
	clock.Advance(time.Minute)
	_, err = c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if code(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("an hour after termination: err = %v, want InvalidInstanceID.NotFound", err)
	}
}

func TestDescribeValidationAndPages(t *testing.T) {
	_, c := newSim(t, Options{})
	want := mustRun(t, c, 12)
	sort.Strings(want)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		in   *ec2.DescribeInstancesInput
		code string
	}{
		{"MaxResults 4", &ec2.DescribeInstancesInput{MaxResults: awssdk.Int32(4)}, "InvalidParameterValue"},
		{"MaxResults 1001", &ec2.DescribeInstancesInput{MaxResults: awssdk.Int32(1001)}, "InvalidParameterValue"},
		{"MaxResults 5", &ec2.DescribeInstancesInput{MaxResults: awssdk.Int32(5)}, ""},
		{"MaxResults 1000", &ec2.DescribeInstancesInput{MaxResults: awssdk.Int32(1000)}, ""},
		{"bad NextToken", &ec2.DescribeInstancesInput{NextToken: awssdk.String("garbage")}, "InvalidPaginationToken"},
		{"unsupported filter", &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: awssdk.String("bogus"), Values: []string{"x"}}}}, "InvalidParameterValue"},
		{"malformed id", &ec2.DescribeInstancesInput{InstanceIds: []string{"i-nothex"}}, "InvalidInstanceID.Malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.DescribeInstances(ctx, tc.in)
			if got := code(err); got != tc.code {
				t.Errorf("code = %q (%v), want %q", got, err, tc.code)
			}
		})
	}
	// One reservation of 12 is split across pages by instance.
	var got []string
	pages := 0
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: awssdk.Int32(5)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				got = append(got, *i.InstanceId)
			}
		}
	}
	sort.Strings(got)
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged ids (-want +got):\n%s", diff)
	}
}

func TestThrottleAndCounts(t *testing.T) {
	s, c := newSim(t, Options{})
	s.ThrottleNext("DescribeInstances", 2)
	ctx := context.Background()
	for i, want := range []string{"RequestLimitExceeded", "RequestLimitExceeded", ""} {
		_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		if got := code(err); got != want {
			t.Errorf("call %d: code %q, want %q", i+1, got, want)
		}
		if want != "" && status(err) != http.StatusServiceUnavailable {
			t.Errorf("call %d: HTTP %d, want 503", i+1, status(err))
		}
	}
	mustRun(t, c, 1)
	want := map[string]int{"DescribeInstances": 3, "RunInstances": 1}
	if diff := cmp.Diff(want, s.CallCounts()); diff != "" {
		t.Errorf("call counts (-want +got):\n%s", diff)
	}
	if n := s.ThrottledCalls("DescribeInstances"); n != 2 {
		t.Errorf("throttled = %d, want 2", n)
	}
}

func TestRunInstancesBudget(t *testing.T) {
	clock := NewVirtualClock(start)
	s, c := newSim(t, Options{Clock: clock, RunInstancesRate: &RunInstancesBudget})
	for i := range 5 {
		if _, err := run(c, "", "t3.micro", 1); err != nil {
			t.Fatalf("call %d within the burst: %v", i+1, err)
		}
	}
	if _, err := run(c, "", "t3.micro", 1); code(err) != "RequestLimitExceeded" {
		t.Errorf("6th call: err = %v, want RequestLimitExceeded", err)
	}
	clock.Advance(500 * time.Millisecond) // +2/s refills one token
	if _, err := run(c, "", "t3.micro", 1); err != nil {
		t.Errorf("after refill: %v", err)
	}
	if n := s.ThrottledCalls("RunInstances"); n != 1 {
		t.Errorf("throttled = %d, want 1", n)
	}
}

func TestDescribeLag(t *testing.T) {
	s, c := newSim(t, Options{})
	s.SetDescribeLag(2)
	id := mustRun(t, c, 1)[0]
	ctx := context.Background()
	for i := range 2 {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Reservations) != 0 {
			t.Errorf("describe %d: the new instance is visible, want it hidden", i+1)
		}
	}
	if diff := cmp.Diff([]string{StateRunning}, states(t, c, id)); diff != "" {
		t.Errorf("third describe (-want +got):\n%s", diff)
	}
}

// fakeBooter is an in-memory Booter: Boot blocks until released.
type fakeBooter struct {
	mu       sync.Mutex
	release  chan struct{}
	booted   map[string][]byte
	stopped  []string
	bootInfo []Instance
}

var _ Booter = (*fakeBooter)(nil)

func (b *fakeBooter) Boot(ctx context.Context, inst Instance, userData []byte) (string, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.booted[inst.ID] = userData
	b.bootInfo = append(b.bootInfo, inst)
	return "10.99.0.5", nil
}

func (b *fakeBooter) Stop(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = append(b.stopped, id)
}

func TestBooterHook(t *testing.T) {
	b := &fakeBooter{release: make(chan struct{}), booted: map[string][]byte{}}
	s, c := newSim(t, Options{Booter: b})
	ctx := context.Background()
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: awssdk.String("ami-12345678"), MinCount: awssdk.Int32(1), MaxCount: awssdk.Int32(1),
		UserData: awssdk.String("aGVsbG8="), SubnetId: awssdk.String(DefaultSubnets[1].ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := *out.Instances[0].InstanceId
	if diff := cmp.Diff([]string{StatePending}, states(t, c, id)); diff != "" {
		t.Errorf("while booting (-want +got):\n%s", diff)
	}
	close(b.release)
	s.WaitBooter()
	got := s.Instances()[0]
	if got.State != StateRunning || got.PrivateIP != "10.99.0.5" {
		t.Errorf("after boot: state %s, IP %s; want running at 10.99.0.5", got.State, got.PrivateIP)
	}
	b.mu.Lock()
	if string(b.booted[id]) != "hello" || b.bootInfo[0].Zone != DefaultSubnets[1].Zone {
		t.Errorf("Boot got user data %q in zone %q, want \"hello\" in %s", b.booted[id], b.bootInfo[0].Zone, DefaultSubnets[1].Zone)
	}
	b.mu.Unlock()
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	s.WaitBooter()
	b.mu.Lock()
	defer b.mu.Unlock()
	if diff := cmp.Diff([]string{id}, b.stopped); diff != "" {
		t.Errorf("stopped (-want +got):\n%s", diff)
	}
}

func TestWildcard(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"web", "web", true},
		{"web", "webx", false},
		{"web*", "webcache", true},
		{"*cache", "webcache", true},
		{"w?b", "web", true},
		{"w?b", "wb", false},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
	}
	for _, tc := range tests {
		t.Run(tc.pattern+"~"+tc.s, func(t *testing.T) {
			if got := wildcard(tc.pattern, tc.s); got != tc.want {
				t.Errorf("wildcard(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
			}
		})
	}
}
