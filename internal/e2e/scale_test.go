package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestLocalWorkersAdded measures one apply's wall time against the number
// of workers it adds (launch, join, label), on a cluster that grows by each
// of SWARMSYNC_SCALE_ADD in turn (e.g. "1,5,10,20,40"; it runs only when
// that is set). With SWARMSYNC_PERF_OUT it writes added.json.
func TestLocalWorkersAdded(t *testing.T) {
	v := os.Getenv("SWARMSYNC_SCALE_ADD")
	if v == "" {
		t.Skip("set SWARMSYNC_SCALE_ADD (e.g. 1,5,10,20,40) to measure apply time vs workers added")
	}
	var adds []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("SWARMSYNC_SCALE_ADD=%q: want positive numbers separated by commas", v)
		}
		adds = append(adds, n)
	}
	w := NewLocalWorld(t, "added", 18)
	spec := w.Spec
	total := 1
	for _, a := range adds {
		total += a
	}
	spec.Update.JoinTimeout.Duration = max(spec.Update.JoinTimeout.Duration, time.Duration(total)*3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute+time.Duration(total)*10*time.Second)
	defer cancel()
	rec := &Recorder{}
	MustConverge(ctx, t, w, withCounts(spec, 3, 1), rec)
	type point struct {
		Added int           `json:"added"`
		Nodes int           `json:"nodes"`
		Wall  time.Duration `json:"wall_ns"`
	}
	var pts []point
	workers := 1
	for _, a := range adds {
		workers += a
		took := MustConverge(ctx, t, w, withCounts(spec, 3, workers), rec)
		pts = append(pts, point{Added: a, Nodes: 3 + workers, Wall: took})
		t.Logf("FIGURE +%d workers (to %d nodes): %s", a, 3+workers, took.Round(10*time.Millisecond))
	}
	CheckShape(ctx, t, w, withCounts(spec, 3, workers))
	if dir := os.Getenv("SWARMSYNC_PERF_OUT"); dir != "" {
		b, _ := json.MarshalIndent(pts, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "added.json"), b, 0o644); err != nil {
			t.Error(err)
		}
	}
}
