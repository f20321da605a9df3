package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/observe"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/aws"
)

// EmulatorPhase is what one provider operation on N emulated instances
// cost: EC2 requests by action (distinct requests: a transport-level retry
// of the same request is counted once), wall time, and the time the
// client-side rate limiter would have waited on a real account (virtual
// clock).
type EmulatorPhase struct {
	Name      string         `json:"name"`
	Instances int            `json:"instances"`
	Requests  map[string]int `json:"requests"`
	// Sent counts every request that reached the emulator, retries included.
	Sent   map[string]int `json:"sent"`
	Wall   time.Duration  `json:"wall_ns"`
	Waited time.Duration  `json:"limiter_wait_ns"`
}

// emulatorSizes are the fleet sizes of TestEmulatorScale: 1,000 in CI,
// SWARMSYNC_SCALE_INSTANCES (comma-separated, e.g. "1000,10000") otherwise.
func emulatorSizes(t *testing.T) []int {
	v := os.Getenv("SWARMSYNC_SCALE_INSTANCES")
	if v == "" {
		return []int{1000}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("SWARMSYNC_SCALE_INSTANCES=%q: want positive numbers separated by commas", v)
		}
		out = append(out, n)
	}
	return out
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// distinct counts the distinct requests rec saw, by action.
func distinct(rec *ec2sim.Recorder) map[string]int {
	out := map[string]int{}
	for _, action := range []string{"DescribeInstances", "RunInstances", "TerminateInstances", "CreateTags"} {
		seen := map[string]bool{}
		for _, f := range rec.Forms(action) {
			seen[f.Encode()] = true
		}
		if len(seen) > 0 {
			out[action] = len(seen)
		}
	}
	return out
}

// TestEmulatorScale launches, observes and terminates N instances that
// never join (no machines behind the emulator) through the real aws
// provider, on a virtual clock with EC2's request and instance buckets:
// launches go out in one RunInstances call per subnet and 1,000 instances,
// an observation in ⌈N/1000⌉ DescribeInstances pages, a termination in
// ⌈N/1000⌉ TerminateInstances calls after ⌈N/200⌉ ownership checks.
func TestEmulatorScale(t *testing.T) {
	var all []EmulatorPhase
	for _, n := range emulatorSizes(t) {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			all = append(all, emulatorScale(t, n)...)
		})
	}
	if dir := os.Getenv("SWARMSYNC_PERF_OUT"); dir != "" {
		b, _ := json.MarshalIndent(all, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "emulator.json"), b, 0o644); err != nil {
			t.Error(err)
		}
	}
}

func emulatorScale(t *testing.T, n int) []EmulatorPhase {
	ctx := context.Background()
	rec := &ec2sim.Recorder{}
	clock := ec2sim.NewVirtualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	sim, err := ec2sim.New(ec2sim.Options{Clock: clock, RunInstancesRate: &ec2sim.RunInstancesBudget})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	cloud, err := aws.New(ctx, aws.Options{
		Region: awsRegion, Endpoint: sim.URL(), Clock: clock,
		HTTPClient:  &http.Client{Timeout: time.Minute, Transport: rec},
		Credentials: credentials.NewStaticCredentialsProvider(awsAccessKey, awsSecretKey, ""),
		Backoff:     func(int) time.Duration { return time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	var subnets []string
	for _, s := range ec2sim.DefaultSubnets {
		subnets = append(subnets, s.ID)
	}
	var phases []EmulatorPhase
	measure := func(name string, f func() error) EmulatorPhase {
		t.Helper()
		sim.ResetCounts()
		rec.Reset()
		slept, start := clock.Slept(), time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s of %d instances: %v", name, n, err)
		}
		ph := EmulatorPhase{Name: name, Instances: n, Requests: distinct(rec), Sent: sim.CallCounts(), Wall: time.Since(start), Waited: clock.Slept() - slept}
		t.Logf("FIGURE emulator %s of %d instances: %s wall, requests %v (sent, retries included: %v), rate limiter would wait %s", name, n, ph.Wall.Round(time.Millisecond), ph.Requests, ph.Sent, ph.Waited.Round(time.Second))
		phases = append(phases, ph)
		return ph
	}
	const cluster = "fleet"
	var ids []string
	launch := measure("launch", func() error {
		insts, err := cloud.Launch(ctx, providers.LaunchRequest{
			Cluster: cluster, Group: "workers/general", Count: n, Image: awsImage, InstanceType: "t3.micro",
			Subnets: subnets, IdempotencyToken: "fleet/launch",
			Tags: map[string]string{providers.TagConfig: "c1", providers.TagName: "fleet-workers-general"},
		})
		for _, in := range insts {
			ids = append(ids, in.ID)
		}
		return err
	})
	perSubnet := ceilDiv(n, len(subnets))
	if got, want := launch.Requests["RunInstances"], len(subnets)*ceilDiv(perSubnet, aws.LaunchBatch); got != want {
		t.Errorf("launch of %d: %d RunInstances calls, want %d (one per subnet and 1,000)", n, got, want)
	}
	var obs int
	look := measure("observe", func() error {
		o, err := observe.Take(ctx, cloud, providers.NoSwarm{}, cluster, clock.Now())
		obs = len(o.Instances)
		return err
	})
	if obs != n {
		t.Errorf("observed %d instances, want %d", obs, n)
	}
	if got, want := look.Requests["DescribeInstances"], ceilDiv(n, aws.PageSize); got != want {
		t.Errorf("observe of %d: %d DescribeInstances calls, want %d", n, got, want)
	}
	term := measure("terminate", func() error { return cloud.Terminate(ctx, cluster, ids) })
	if got, want := term.Requests["TerminateInstances"], ceilDiv(n, aws.TerminateBatch); got != want {
		t.Errorf("terminate of %d: %d TerminateInstances calls, want %d", n, got, want)
	}
	if got, want := term.Requests["DescribeInstances"], ceilDiv(n, 200); got != want {
		t.Errorf("terminate of %d: %d ownership checks, want %d", n, got, want)
	}
	t.Logf("FIGURE emulator %d instances: calls per pass (observe) %d", n, look.Requests["DescribeInstances"])
	return phases
}
