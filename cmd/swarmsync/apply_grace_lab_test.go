package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/schema"
)

// TestApplyAutoRidesOutRestarts runs `swarmsync apply --auto` on a 2s
// schedule over a real 3 + 1 Swarm (1s heartbeat: a stopped engine is Down
// within seconds; update.downGrace 20s). A worker's dockerd, then a
// follower manager's, is stopped until the Swarm marks its node Down, left
// so for several passes, and started again: nothing is launched, demoted,
// removed or terminated. Then the follower manager's dockerd stays stopped:
// past the grace it is replaced (a new manager joins, the old one is
// demoted, removed and terminated), and a leader with a quorum of reachable
// managers answers throughout.
func TestApplyAutoRidesOutRestarts(t *testing.T) {
	const cluster = "grace"
	const grace = 20 * time.Second
	cloud, subnet := localLab(t, cluster)
	repo := t.TempDir()
	writeLabSpec(t, repo, cluster, subnet, 3, 1, fastUserData(t))
	specPath := filepath.Join(repo, "cluster.yaml")
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	spec := strings.Replace(string(b), "update:\n", "update:\n  downGrace: "+grace.String()+"\n", 1) +
		"schedule:\n  reconcile: \"@every 2s\"\n"
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &cliRecorder{}
	if code, out, errs := rec.run("apply", "--yes", "--repo", repo); code != 0 {
		t.Fatalf("bootstrap: exit %d\n%s%s", code, out, errs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// observe observes the Swarm through its leader.
	observe := func(ctx context.Context) (providers.SwarmState, error) {
		eps, err := cloud.ManagerEndpoints(ctx, cluster)
		if err != nil {
			return providers.SwarmState{}, err
		}
		sw, err := docker.FindLeader(ctx, eps)
		if err != nil {
			return providers.SwarmState{}, err
		}
		defer sw.Close()
		return sw.Observe(ctx)
	}
	// waitNode polls until node id of instance inst satisfies ok.
	waitNode := func(what, inst string, ok func(n providers.Node) bool) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		defer wcancel()
		if err := lab.Poll(wctx, func() (bool, error) {
			st, err := observe(wctx)
			if err != nil {
				return false, nil
			}
			for _, n := range st.Nodes {
				if n.InstanceID() == inst {
					return ok(n), nil
				}
			}
			return false, nil
		}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shape := func() (insts []string, nodes []string) {
		t.Helper()
		all, err := cloud.Instances(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range all {
			insts = append(insts, in.ID+" "+in.Group+" "+string(in.State))
		}
		st, err := observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.Nodes {
			nodes = append(nodes, n.ID+" "+string(n.Role)+" "+n.InstanceID())
		}
		slices.Sort(insts)
		slices.Sort(nodes)
		return insts, nodes
	}
	all, err := cloud.Instances(ctx, cluster)
	if err != nil {
		t.Fatal(err)
	}
	var worker, follower string
	st, err := observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		if in.Group != schema.ManagersGroup {
			worker = in.ID
			continue
		}
		for _, n := range st.Nodes {
			if n.InstanceID() == in.ID && !n.Leader && follower == "" {
				follower = in.ID
			}
		}
	}
	if worker == "" || follower == "" {
		t.Fatalf("no worker or follower manager among %v", all)
	}

	// The daemon.
	var daemonOut strings.Builder
	var outMu sync.Mutex
	// The test binary runs as swarmsync when called by that name.
	bin := filepath.Join(t.TempDir(), "swarmsync")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command(bin, "apply", "--auto", "--repo", repo)
	daemon.Stdout = &lockedWriter{w: &daemonOut, mu: &outMu}
	daemon.Stderr = daemon.Stdout
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	stopDaemon := func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		_ = daemon.Wait()
	}
	defer stopDaemon()

	passes := func() int {
		outMu.Lock()
		defer outMu.Unlock()
		return strings.Count(daemonOut.String(), "pass started")
	}
	wantInsts, wantNodes := shape()
	for _, c := range []struct{ what, inst string }{{"worker", worker}, {"follower manager", follower}} {
		if err := cloud.Stop(ctx, cluster, c.inst); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitNode(c.what+" marked Down", c.inst, func(n providers.Node) bool { return n.State == providers.NodeDown })
		t.Logf("%s %s: Down %s after its dockerd stopped", c.what, c.inst, time.Since(start).Round(100*time.Millisecond))
		before := passes()
		time.Sleep(6 * time.Second) // three passes of the daemon see it Down
		if n := passes() - before; n < 2 {
			t.Errorf("the daemon made %d passes while the %s was Down, want at least 2", n, c.what)
		}
		if err := cloud.Start(ctx, cluster, c.inst); err != nil {
			t.Fatal(err)
		}
		waitNode(c.what+" Ready again", c.inst, func(n providers.Node) bool {
			return n.State == providers.NodeReady && (n.Role != providers.RoleManager || n.Reachability == providers.Reachable)
		})
		t.Logf("%s %s: back after %s", c.what, c.inst, time.Since(start).Round(100*time.Millisecond))
		insts, nodes := shape()
		if !slices.Equal(insts, wantInsts) || !slices.Equal(nodes, wantNodes) {
			t.Fatalf("after the %s's restart:\ninstances %v\nwant      %v\nnodes %v\nwant  %v", c.what, insts, wantInsts, nodes, wantNodes)
		}
	}

	// Now the follower manager stays down: replaced past the grace, with
	// a leader and quorum throughout.
	var bad []string
	samples := 0
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for wctx.Err() == nil {
			sctx, scancel := context.WithTimeout(wctx, 3*time.Second)
			ok, why := quorumOK(sctx, cloud, cluster)
			scancel()
			if wctx.Err() != nil {
				return
			}
			samples++
			if !ok {
				bad = append(bad, time.Now().Format("15:04:05.000")+" "+why)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
	if err := cloud.Stop(ctx, cluster, follower); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, grace+2*time.Minute)
	defer rcancel()
	err = lab.Poll(rctx, func() (bool, error) {
		all, err := cloud.Instances(rctx, cluster)
		if err != nil {
			return false, nil
		}
		managers := 0
		for _, in := range all {
			if in.ID == follower && in.State.Live() {
				return false, nil
			}
			if in.Group == schema.ManagersGroup && in.State == providers.StateRunning {
				managers++
			}
		}
		if managers != 3 {
			return false, nil
		}
		st, err := observe(rctx)
		if err != nil {
			return false, nil
		}
		reachable := 0
		for _, n := range st.Nodes {
			if n.InstanceID() == follower {
				return false, nil // not removed yet
			}
			if n.Role == providers.RoleManager && n.Reachability == providers.Reachable {
				reachable++
			}
		}
		return reachable == 3, nil
	})
	took := time.Since(stopped)
	stopWatch()
	wg.Wait()
	if err != nil {
		outMu.Lock()
		t.Fatalf("the manager kept down was not replaced within %s: %v\ndaemon:\n%s", grace+2*time.Minute, err, daemonOut.String())
	}
	t.Logf("the manager kept down was replaced %s after its dockerd stopped (downGrace %s); quorum watcher: %d samples, %d bad", took.Round(time.Second), grace, samples, len(bad))
	if took < grace {
		t.Errorf("replaced after %s, before the grace of %s", took, grace)
	}
	for _, b := range bad {
		t.Errorf("no leader with quorum at %s", b)
	}
	if samples < 10 {
		t.Errorf("the quorum watcher took only %d samples", samples)
	}
	stopDaemon()
	outMu.Lock()
	defer outMu.Unlock()
	if strings.Contains(daemonOut.String(), "SWMTKN-") {
		t.Error("a join token appears in the daemon's output")
	}
}

// quorumOK asks every running manager of cluster who leads: true when one
// names a leader with a quorum of reachable managers; a sample where no
// manager answers is a violation.
func quorumOK(ctx context.Context, cloud interface {
	ManagerEndpoints(context.Context, string) ([]string, error)
}, cluster string) (bool, string) {
	eps, err := cloud.ManagerEndpoints(ctx, cluster)
	if err != nil {
		return false, "no manager endpoints: " + err.Error()
	}
	var why []string
	for _, ep := range eps {
		sw, err := docker.New(ep)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		st, err := sw.Observe(ctx)
		sw.Close()
		if err != nil {
			why = append(why, ep+": "+err.Error())
			continue
		}
		members, reachable, leader := 0, 0, false
		for _, n := range st.Nodes {
			if n.Role == providers.RoleManager {
				members++
				if n.Reachability == providers.Reachable {
					reachable++
				}
				leader = leader || n.Leader
			}
		}
		if leader && reachable >= members/2+1 {
			return true, ""
		}
		why = append(why, ep+": no leader with quorum")
	}
	if len(why) == 0 {
		why = append(why, "no running manager")
	}
	return false, strings.Join(why, "; ")
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  *strings.Builder
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
