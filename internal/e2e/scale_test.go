package e2e

import (
	"os"
	"strconv"
	"testing"
)

// scaleWorkers is the number of workers of the scale scenario: 3 in CI,
// SWARMSYNC_SCALE_WORKERS for a larger run (delta is the same number, capped
// at 20).
func scaleWorkers(t *testing.T) (workers, delta int) {
	t.Helper()
	v := os.Getenv("SWARMSYNC_SCALE_WORKERS")
	if v == "" {
		return 3, 3
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SWARMSYNC_SCALE_WORKERS=%q: want a positive number of workers", v)
	}
	return n, min(n, 20)
}

func TestLocalScale(t *testing.T) {
	workers, delta := scaleWorkers(t)
	w := NewLocalWorld(t, "scale", 16)
	w.CountCalls()
	Scale(t, w, workers, delta)
}

// TestAWSScale is the scale scenario on the AWS path (emulated EC2 booting
// lab machines). It runs only with SWARMSYNC_SCALE_WORKERS: CI covers the
// path with the AWS scenarios and the call budget with TestLocalScale.
func TestAWSScale(t *testing.T) {
	if os.Getenv("SWARMSYNC_SCALE_WORKERS") == "" {
		t.Skip("set SWARMSYNC_SCALE_WORKERS to run the scale scenario on the AWS path")
	}
	workers, delta := scaleWorkers(t)
	aw := NewAWSWorldDetail(t, "awsscale", 17)
	aw.CountCalls()
	aw.Sim.ResetCounts()
	Scale(t, aw.World, workers, delta)
	t.Logf("FIGURE aws scale: EC2 requests over the whole run %v", aw.Sim.CallCounts())
}
