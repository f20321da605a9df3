package e2e

import (
	"context"
	"hash/fnv"
	"strconv"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/ec2sim"
)

// The scenarios on the AWS path: providers/aws over HTTP to the EC2
// emulator, whose instances boot lab machines running the default aws user
// data. Subnets 10.247.21-25.0/24 (the local suite uses 11-15), so both
// suites can run at once.

func TestAWSBootstrap(t *testing.T) {
	w := NewAWSWorld(t, "awsboot", 21)
	took := Bootstrap(t, w)
	t.Logf("FIGURE aws bootstrap 3 managers + 2 workers: %s", took.Round(10e6))
}

func TestAWSScaleWorkers(t *testing.T) {
	needImage(t)
	w := NewAWSWorld(t, "awsworkers", 22)
	up := ScaleWorkers(t, w)
	t.Logf("FIGURE aws scale +2 workers: %s", up.Round(10e6))
}

func TestAWSScaleManagers(t *testing.T) {
	w := NewAWSWorld(t, "awsmanagers", 23)
	per := ScaleManagers(t, w)
	t.Logf("FIGURE aws manager replacement (rolling, mean per manager): %s", per.Round(10e6))
}

func TestAWSCrashSafety(t *testing.T) {
	w := NewAWSWorld(t, "awscrash", 24)
	// As the local suite: every step index of a scale-up and a scale-down.
	up, down := CrashSafety(t, w)
	t.Logf("interrupted %d scale-up and %d scale-down steps", up, down)
}

// throttleFraction fails the first request of every action and about
// percent% of the others with RequestLimitExceeded, spread by a hash of the
// action and request number (deterministic, and never the same position in
// every action).
func throttleFraction(percent uint32) ec2sim.Fault {
	return func(action string, n int) *ec2sim.APIError {
		if n == 1 {
			return ec2sim.Throttled()
		}
		h := fnv.New32a()
		h.Write([]byte(action + "/" + strconv.Itoa(n)))
		if h.Sum32()%100 < percent {
			return ec2sim.Throttled()
		}
		return nil
	}
}

// TestAWSThrottlingStorm scales workers 1 → 3 and managers 1 → 3, then
// workers back to 1, while 40% of all EC2 requests are throttled: the
// cluster still converges to the exact shape each time, with no duplicate
// launch.
func TestAWSThrottlingStorm(t *testing.T) {
	aw := NewAWSWorldDetail(t, "awsstorm", 25)
	w := aw.World
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rec := &Recorder{}
	MustConverge(ctx, t, w, withCounts(w.Spec, 1, 1), rec)

	aw.Sim.ResetCounts()
	aw.Sim.AddFault(throttleFraction(40))
	up := withCounts(w.Spec, 3, 3)
	took := MustConverge(ctx, t, w, up, rec)
	CheckShape(ctx, t, w, up)
	t.Logf("FIGURE aws scale-up 1+1 → 3+3 under 40%% throttling: %s", took.Round(10e6))
	// Exactly the 4 new instances were launched (plus the 2 of the
	// bootstrap): retried launches reused their reservation.
	if n := len(aw.Sim.Instances()); n != 6 {
		t.Errorf("the emulator holds %d instances, want 6 (2 bootstrapped + 4 launched once each)", n)
	}

	down := withCounts(w.Spec, 3, 1)
	MustConverge(ctx, t, w, down, rec)
	aw.Sim.ClearFaults()
	CheckShape(ctx, t, w, down)

	t.Logf("requests during the storm: %v; throttled: DescribeInstances %d, RunInstances %d, TerminateInstances %d",
		aw.Sim.CallCounts(), aw.Sim.ThrottledCalls("DescribeInstances"), aw.Sim.ThrottledCalls("RunInstances"),
		aw.Sim.ThrottledCalls("TerminateInstances"))
	for _, action := range []string{"DescribeInstances", "RunInstances", "TerminateInstances"} {
		if aw.Sim.ThrottledCalls(action) == 0 {
			t.Errorf("no %s request was throttled: the storm missed it", action)
		}
	}
	terminated := 0
	for _, in := range aw.Sim.Instances() {
		if in.State == ec2sim.StateTerminated || in.State == ec2sim.StateShuttingDown {
			terminated++
		}
	}
	if terminated != 2 {
		t.Errorf("%d instances terminated, want the 2 surplus workers", terminated)
	}
	assertNoTokenIn(ctx, t, w, rec.Text())
}
