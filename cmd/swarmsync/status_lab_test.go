package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
)

// TestStatusOnLocalMachines builds a small real Swarm through the CLI
// (apply --yes on local machines), then checks that status reports the real
// numbers: the leader the Swarm names, quorum, groups against the spec,
// drift after the spec changes, and the /status of a real apply --auto
// daemon that converges the cluster.
func TestStatusOnLocalMachines(t *testing.T) {
	cloud, subnet := localLab(t, "statuslab")
	ctx := context.Background()
	repo := t.TempDir()
	setWorkers := func(n int) { writeLabSpec(t, repo, "statuslab", subnet, 3, n, "") }
	var rec cliRecorder
	run := rec.run
	match := func(out string, res ...string) {
		t.Helper()
		for _, re := range res {
			if !regexp.MustCompile(`(?m)` + re).MatchString(out) {
				t.Errorf("status output does not match %s:\n%s", re, out)
			}
		}
	}
	live := func() map[string]string { // instance id -> group
		t.Helper()
		insts, err := cloud.Instances(ctx, "statuslab")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, in := range insts {
			if in.State.Live() {
				out[in.ID] = in.Group
			}
		}
		return out
	}
	statusJSON := func(args ...string) (int, statusReport) {
		t.Helper()
		code, out, errs := run(append([]string{"status", "--repo", repo, "--format", "json"}, args...)...)
		var r statusReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("status --format json: exit %d, %v\n%s\n%s", code, err, out, errs)
		}
		return code, r
	}

	// Nothing launched yet: no swarm, everything to launch.
	setWorkers(1)
	code, out, errs := run("status", "--repo", repo, "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("status before bootstrap: exit %d, want 2\n%s\n%s", code, out, errs)
	}
	match(out, `^Swarm: +not active`, `^managers +3 +0 +0 +0 +0$`, `^workers/general +1 +0 +0 +0 +0$`, `^Drift: +4 to launch`)

	start := time.Now()
	if code, out, errs := run("apply", "--repo", repo, "--yes"); code != 0 {
		t.Fatalf("bootstrap: exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("bootstrap 3 managers + 1 worker through the CLI: %s", time.Since(start).Round(10*time.Millisecond))

	// The real numbers: what the cloud lists and the leader the Swarm names.
	insts := live()
	if len(insts) != 4 {
		t.Fatalf("%d live instances after bootstrap, want 4", len(insts))
	}
	eps, err := cloud.ManagerEndpoints(ctx, "statuslab")
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
	var leaderNode providers.Node
	for _, n := range st.Nodes {
		if n.Leader {
			leaderNode = n
		}
	}
	if leaderNode.ID == "" {
		t.Fatalf("the Swarm names no leader: %+v", st)
	}

	code, out, errs = run("status", "--repo", repo, "--detailed-exitcode")
	if code != 0 || errs != "" {
		t.Fatalf("status after bootstrap: exit %d, stderr %q\n%s", code, errs, out)
	}
	match(out,
		`^Cluster statuslab \(commit dir:[0-9a-f]{7}, observed `,
		`^Swarm: +active, leader `+regexp.QuoteMeta(leaderNode.ID+" ("+leaderNode.Hostname+", "+leaderNode.ManagerAddr+")")+`$`,
		`^Managers: 3/3 reachable, quorum 2: healthy$`,
		`^Nodes: +4/4 ready$`,
		`^managers +3 +3 +3 +0 +0$`,
		`^workers/general +1 +1 +1 +0 +0$`,
		`^Drift: +in sync with the spec$`,
	)
	_, r := statusJSON()
	if r.Swarm.Leader == nil || r.Swarm.Leader.ID != leaderNode.ID || r.Swarm.Leader.Instance != leaderNode.InstanceID() || insts[leaderNode.InstanceID()] != "managers" {
		t.Errorf("json leader = %+v, the Swarm's leader is %s on instance %s", r.Swarm.Leader, leaderNode.ID, leaderNode.InstanceID())
	}
	if r.Swarm.Nodes != len(st.Nodes) || r.Swarm.Managers != 3 || r.Swarm.Reachable != 3 || r.Swarm.Quorum != 2 || r.Swarm.State != "healthy" {
		t.Errorf("json swarm = %+v; the Swarm lists %d nodes", r.Swarm, len(st.Nodes))
	}
	if !strings.HasPrefix(r.Source.Commit, "dir:") || r.Fingerprint == "" {
		t.Errorf("json source = %+v, fingerprint %q", r.Source, r.Fingerprint)
	}

	// The spec asks for one more worker: drift, exit 2.
	setWorkers(2)
	code, out, _ = run("status", "--repo", repo, "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("status after the spec changed: exit %d, want 2\n%s", code, out)
	}
	match(out, `^workers/general +2 +1 +1 +0 +0$`, `^Drift: +1 to launch, 1 to label(, 1 join token rotation)? \(\d+ steps?\)`)
	if code, out, _ := run("status", "--repo", repo); code != 0 {
		t.Errorf("status without --detailed-exitcode: exit %d\n%s", code, out)
	}

	// A real apply --auto daemon converges the cluster; status reads its
	// /status and the cluster in sync.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	actx, stop := context.WithCancel(ctx)
	var autoOut, autoErr bytes.Buffer
	autoDone := make(chan error, 1)
	go func() {
		a := &app{stdin: strings.NewReader(""), stdout: &autoOut, stderr: &autoErr}
		autoDone <- runApplyAuto(actx, a, &applyOptions{src: sourceFlags{Repo: repo}, format: "text", auto: true, listen: addr})
	}()
	stopped := false
	stopAuto := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		if err := <-autoDone; err != nil {
			t.Errorf("apply --auto: %v", err)
		}
		rec.all.WriteString(autoOut.String() + autoErr.String())
	}
	defer stopAuto()
	var loop apply.LoopStatus
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/status"); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&loop)
			resp.Body.Close()
			if err == nil && loop.Passes >= 1 && !loop.NextPass.IsZero() {
				break
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if loop.Passes < 1 || loop.LastError != "" {
		t.Fatalf("apply --auto did not finish a pass: %+v\n%s", loop, autoErr.String())
	}
	code, out, errs = run("status", "--repo", repo, "--daemon", addr, "--detailed-exitcode")
	if code != 0 || errs != "" {
		t.Fatalf("status --daemon: exit %d, stderr %q\n%s", code, errs, out)
	}
	match(out,
		`^workers/general +2 +2 +2 +0 +0$`,
		`^Nodes: +5/5 ready$`,
		`^Drift: +in sync with the spec$`,
		`^Daemon `+regexp.QuoteMeta(addr)+` \(apply --auto\):$`,
		`^  leader: +yes \(acting\)$`,
		`^  passes: +1 run, 0 skipped \(not leader\)$`,
		fmt.Sprintf(`^  last pass: .* UTC, %s, ok \(took `, count(loop.LastSteps, "step")),
		`^  next pass: .* UTC \(in (\d+m)?\d+s\)$`,
	)
	if loop.LastSteps < 3 { // launch, await-join, label at least
		t.Errorf("the daemon's pass ran %d steps, want at least 3", loop.LastSteps)
	}
	_, r = statusJSON("--daemon", addr)
	if r.Daemon == nil || r.Daemon.Loop == nil || r.Daemon.Loop.Passes != 1 || !r.Daemon.Loop.Leader || r.Daemon.Loop.LastSteps != loop.LastSteps {
		t.Errorf("json daemon = %+v, /status said %+v", r.Daemon, loop)
	}
	stopAuto()
	if n := len(live()); n != 5 {
		t.Errorf("%d live instances after apply --auto, want 5", n)
	}

	// Once the daemon is gone, --daemon is an error; the status still shows.
	code, out, errs = run("status", "--repo", repo, "--daemon", addr)
	if code != 1 || !strings.Contains(errs, "failed to read the apply --auto status from "+addr) || !strings.Contains(out, "Drift:    in sync with the spec") {
		t.Errorf("status --daemon with no daemon: exit %d, stderr %q\n%s", code, errs, out)
	}

	// A manager's machine stops: quorum holds but is at risk (exit 2 with
	// --detailed-exitcode); the plan leaves the manager alone for
	// update.downGrace (it may come back) and a note says so.
	var follower string
	for id, g := range live() {
		if g == "managers" && id != leaderNode.InstanceID() {
			follower = id
			break
		}
	}
	if err := cloud.Stop(ctx, "statuslab", follower); err != nil {
		t.Fatal(err)
	}
	degraded := regexp.MustCompile(`(?m)^Managers: 2/3 reachable, quorum 2: DEGRADED, one more unreachable manager loses quorum$`)
	deadline = time.Now().Add(45 * time.Second)
	for {
		code, out, errs = run("status", "--repo", repo, "--detailed-exitcode")
		if degraded.MatchString(out) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code != 2 || !degraded.MatchString(out) {
		t.Fatalf("status with manager %s stopped: exit %d, stderr %q\n%s", follower, code, errs, out)
	}
	t.Logf("status with manager %s stopped:\n%s", follower, out)
	match(out, `^managers +3 +3 +[23] +[01] +0$`, `^Drift: +in sync with the spec`, `^  - Node \S+ \(group managers, instance `+follower+`\) .*left alone`,
		`^Held: +1 node\(s\)`, `^  node \S+ \(managers, instance `+follower+`\): `)
	_, r = statusJSON()
	if r.Swarm.Reachable != 2 || r.Swarm.Managers != 3 || r.Swarm.State != "degraded" || !r.Drift.InSync || len(r.Drift.Held) != 1 || r.Drift.Held[0].Instance != follower {
		t.Errorf("json with a manager stopped: swarm %+v, drift %+v", r.Swarm, r.Drift)
	}

	if strings.Contains(rec.all.String(), "SWMTKN-") {
		t.Errorf("a join token appears in the CLI output")
	}
}
