package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/providers/docker"
)

// TestApplyOnLocalMachines drives the real CLI entry point against real
// local machines: confirmation, bootstrap, a stale saved plan, a fresh saved
// plan, an endpoint that is not the leader, destroy; and scans every byte
// of output for join tokens.
func TestApplyOnLocalMachines(t *testing.T) {
	cloud, subnet := localLab(t, "clilab")
	repo := t.TempDir()
	setWorkers := func(n int) { writeLabSpec(t, repo, "clilab", subnet, 3, n, "") }
	var rec cliRecorder
	run := rec.run
	live := func() int {
		t.Helper()
		insts, err := cloud.Instances(context.Background(), "clilab")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, in := range insts {
			if in.State.Live() {
				n++
			}
		}
		return n
	}

	setWorkers(1)
	// Without a terminal and without --yes, nothing happens.
	if code, _, stderr := run("apply", "--repo", repo); code != 1 || !strings.Contains(stderr, "stdin is not a terminal: run with --yes") {
		t.Fatalf("apply without --yes: exit %d, stderr %q", code, stderr)
	}
	if n := live(); n != 0 {
		t.Fatalf("%d instances after a refused apply, want 0", n)
	}

	start := time.Now()
	if code, stdout, stderr := run("apply", "--repo", repo, "--yes"); code != 0 {
		t.Fatalf("bootstrap: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("bootstrap 3 managers + 1 worker through the CLI: %s", time.Since(start).Round(10*time.Millisecond))
	if n := live(); n != 4 {
		t.Fatalf("%d live instances after bootstrap, want 4", n)
	}
	if code, stdout, _ := run("apply", "--repo", repo, "--yes"); code != 0 || !strings.Contains(stdout, "No changes") {
		t.Fatalf("second apply: exit %d, stdout %q", code, stdout)
	}

	// A saved plan goes stale when the cluster changes under it.
	setWorkers(2)
	stale := filepath.Join(t.TempDir(), "stale.json")
	if code, _, stderr := run("plan", "--repo", repo, "--out", stale); code != 0 && code != 2 {
		t.Fatalf("plan --out: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run("apply", "--repo", repo, "--yes", "--format", "json"); code != 0 {
		t.Fatalf("apply workers=2: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run("apply", stale); code != 1 || !strings.Contains(stderr, "plan is stale") {
		t.Fatalf("stale plan: exit %d, stderr %q", code, stderr)
	}
	if n := live(); n != 5 {
		t.Fatalf("%d live instances after refusing a stale plan, want 5", n)
	}

	// A fresh saved plan is applied as it is.
	setWorkers(1)
	fresh := filepath.Join(t.TempDir(), "fresh.json")
	if code, _, stderr := run("plan", "--repo", repo, "--out", fresh); code != 0 && code != 2 {
		t.Fatalf("plan --out: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := run("apply", fresh); code != 0 {
		t.Fatalf("apply fresh plan: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := live(); n != 4 {
		t.Fatalf("%d live instances after the fresh plan, want 4", n)
	}

	// apply --auto: the loop (on the leader) brings workers to 2 on its
	// own, and serves /healthz and /status.
	setWorkers(2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	actx, stop := context.WithCancel(context.Background())
	var autoOut, autoErr bytes.Buffer
	autoDone := make(chan error, 1)
	go func() {
		a := &app{stdin: strings.NewReader(""), stdout: &autoOut, stderr: &autoErr}
		o := &applyOptions{src: sourceFlags{Repo: repo}, format: "text", auto: true, listen: addr}
		autoDone <- runApplyAuto(actx, a, o)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for live() != 5 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	var status apply.LoopStatus
	var health string
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/status"); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&status)
			resp.Body.Close()
			if err == nil && status.Passes >= 1 && status.LastEnd.After(status.LastStart) {
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		health = string(b)
	}
	stop()
	if err := <-autoDone; err != nil {
		t.Fatalf("apply --auto: %v", err)
	}
	rec.all.WriteString(autoOut.String() + autoErr.String())
	if n := live(); n != 5 {
		t.Fatalf("apply --auto left %d live instances, want 5\n%s", n, autoErr.String())
	}
	if !status.Leader || status.Passes < 1 || status.LastError != "" {
		t.Errorf("status = %+v, want a leader pass without error", status)
	}
	if health != "ok\n" {
		t.Errorf("/healthz = %q", health)
	}

	// Pointed at a manager that is not the leader, apply refuses and names
	// the leader's address.
	setWorkers(1)
	ctx := context.Background()
	eps, err := cloud.ManagerEndpoints(ctx, "clilab")
	if err != nil {
		t.Fatal(err)
	}
	leader, err := docker.FindLeader(ctx, eps)
	if err != nil {
		t.Fatal(err)
	}
	st, err := leader.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var follower string
	for _, ep := range eps {
		if ep != leader.Host() {
			follower = ep
			break
		}
	}
	t.Setenv("DOCKER_HOST", follower)
	code, _, stderr := run("apply", "--repo", repo, "--yes")
	if code != 1 || !strings.Contains(stderr, "not the Swarm leader") || !strings.Contains(stderr, st.LeaderAddr) {
		t.Fatalf("apply on a follower: exit %d, stderr %q (leader at %s)", code, stderr, st.LeaderAddr)
	}
	if n := live(); n != 5 {
		t.Fatalf("%d live instances after a refused apply on a follower, want 5", n)
	}
	// apply --auto on a follower stands by: its pass is skipped.
	{
		actx, stop := context.WithCancel(context.Background())
		var out, errb bytes.Buffer
		done := make(chan error, 1)
		go func() {
			a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
			done <- runApplyAuto(actx, a, &applyOptions{src: sourceFlags{Repo: repo}, format: "text", auto: true, listen: addr})
		}()
		var status apply.LoopStatus
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if resp, err := http.Get("http://" + addr + "/status"); err == nil {
				err = json.NewDecoder(resp.Body).Decode(&status)
				resp.Body.Close()
				if err == nil && status.Skipped >= 1 {
					break
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatalf("apply --auto on a follower: %v", err)
		}
		rec.all.WriteString(out.String() + errb.String())
		if status.Skipped < 1 || status.Leader || status.Passes != 0 {
			t.Errorf("follower status = %+v, want a skipped pass and no pass run", status)
		}
		if n := live(); n != 5 {
			t.Fatalf("%d live instances after apply --auto on a follower, want 5", n)
		}
	}
	os.Unsetenv("DOCKER_HOST")

	if code, stdout, stderr := run("destroy", "--repo", repo, "--cluster", "clilab", "--yes"); code != 0 || !strings.Contains(stdout, "5 instances terminated") {
		t.Fatalf("destroy: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := live(); n != 0 {
		t.Fatalf("%d live instances after destroy, want 0", n)
	}
	// The local provider forgets the terminated machines: nothing is
	// listed any more, and a plan's header counts no instance.
	if insts, err := cloud.Instances(context.Background(), "clilab"); err != nil || len(insts) != 0 {
		t.Errorf("after destroy the cloud lists %d instances (%v), want none", len(insts), err)
	}
	if code, stdout, stderr := run("plan", "--repo", repo); code != 0 || !strings.Contains(stdout, "observation ") || !strings.Contains(stdout, ": 0 instances, 0 nodes)") {
		t.Errorf("plan after destroy: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, stderr := run("destroy", "--repo", repo, "--cluster", "clilab", "--yes"); code != 0 || !strings.Contains(stdout, "has no instances: nothing to destroy") {
		t.Errorf("destroy again: exit %d\n%s\n%s", code, stdout, stderr)
	}

	for _, f := range []string{stale, fresh} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rec.all.Write(b)
	}
	if strings.Contains(rec.all.String(), "SWMTKN-") {
		t.Errorf("a join token appears in the CLI output or a saved plan")
	}
	if rec.all.Len() == 0 {
		t.Error("no output was captured to scan")
	}
}
