package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
)

// soakSample is the process's footprint after a pass of the daemon loop.
type soakSample struct {
	Pass       int     `json:"pass"`
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"fds"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_mib"`
}

func sampleProcess(pass int) soakSample {
	s := soakSample{Pass: pass, Goroutines: runtime.NumGoroutine()}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.FDs = len(fds)
	}
	if f, err := os.Open("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
				s.RSSMiB = float64(kb) / 1024
			}
		}
		f.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.HeapMiB = float64(ms.HeapInuse) / (1 << 20)
	return s
}

// soakPasses is the length of the soak: 15 passes in CI,
// SWARMSYNC_SOAK_PASSES for a long run (≥ 1,000).
func soakPasses(t *testing.T) int {
	v := os.Getenv("SWARMSYNC_SOAK_PASSES")
	if v == "" {
		return 15
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 {
		t.Fatalf("SWARMSYNC_SOAK_PASSES=%q: want a number of passes ≥ 2", v)
	}
	return n
}

// TestSoak runs the daemon loop (apply --auto) on a steady 1+1 local cluster
// on the fastest schedule cron allows (@every 1s) for soakPasses passes:
// every pass plans nothing and fails nothing, and the process's goroutines
// and open descriptors stay flat (a leaked client or connection per pass
// would add some each pass), and so does its heap.
func TestSoak(t *testing.T) {
	passes := soakPasses(t)
	_, subnet := localLab(t, "soak")
	repo := t.TempDir()
	writeLabSpec(t, repo, "soak", subnet, 1, 1, "")
	f, err := os.OpenFile(filepath.Join(repo, "cluster.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "schedule:\n  reconcile: \"@every 1s\"\n")
	f.Close()
	rec := &cliRecorder{}
	if code, stdout, stderr := rec.run("apply", "--repo", repo, "--yes"); code != 0 {
		t.Fatalf("bootstrap: exit %d\n%s\n%s", code, stdout, stderr)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var autoOut, autoErr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		a := &app{stdin: strings.NewReader(""), stdout: &autoOut, stderr: &autoErr}
		o := &applyOptions{src: sourceFlags{Repo: repo}, format: "text", auto: true, listen: addr}
		done <- runApplyAuto(ctx, a, o)
	}()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var curve []soakSample
	var bad []string
	seen := 0
	deadline := time.Now().Add(time.Duration(passes)*3*time.Second + time.Minute)
	for seen < passes && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		resp, err := hc.Get("http://" + addr + "/status")
		if err != nil {
			continue
		}
		var st apply.LoopStatus
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.Passes == seen {
			continue
		}
		if st.Passes > seen+1 {
			bad = append(bad, fmt.Sprintf("passes %d-%d went by unseen", seen+1, st.Passes-1))
		}
		seen = st.Passes
		if st.LastSteps != 0 || st.LastError != "" || !st.Leader {
			bad = append(bad, fmt.Sprintf("pass %d: leader %v, %d steps, error %q", seen, st.Leader, st.LastSteps, st.LastError))
		}
		curve = append(curve, sampleProcess(seen))
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("apply --auto: %v", err)
	}
	if seen < passes {
		t.Fatalf("%d passes in time, want %d\n%s", seen, passes, autoErr.String())
	}
	for _, b := range bad {
		t.Error(b)
	}
	if n := strings.Count(autoErr.String(), `msg="reconcile pass done" steps=0`); n < passes {
		t.Errorf("%d passes logged a pass done with 0 steps, want %d", n, passes)
	}

	// Flat: after a warm-up of a few passes (connections and caches set
	// up), the last sample holds no more goroutines and descriptors than
	// the warm sample plus a small tolerance, and the heap did not grow
	// in proportion to the passes.
	warm := curve[min(4, len(curve)-1)]
	last := curve[len(curve)-1]
	t.Logf("FIGURE soak %d passes: goroutines %d → %d, fds %d → %d, RSS %.1f → %.1f MiB, heap %.1f → %.1f MiB (pass %d → %d)",
		passes, warm.Goroutines, last.Goroutines, warm.FDs, last.FDs, warm.RSSMiB, last.RSSMiB, warm.HeapMiB, last.HeapMiB, warm.Pass, last.Pass)
	if last.Goroutines > warm.Goroutines+5 {
		t.Errorf("goroutines grew from %d (pass %d) to %d (pass %d): something leaks per pass", warm.Goroutines, warm.Pass, last.Goroutines, last.Pass)
	}
	if last.FDs > warm.FDs+5 {
		t.Errorf("open descriptors grew from %d (pass %d) to %d (pass %d): connections leak per pass", warm.FDs, warm.Pass, last.FDs, last.Pass)
	}
	if last.HeapMiB > warm.HeapMiB+32 {
		t.Errorf("heap grew from %.1f MiB to %.1f MiB over %d passes", warm.HeapMiB, last.HeapMiB, last.Pass-warm.Pass)
	}
	if dir := os.Getenv("SWARMSYNC_PERF_OUT"); dir != "" {
		b, _ := json.MarshalIndent(curve, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "soak.json"), b, 0o644); err != nil {
			t.Error(err)
		}
	}
}
