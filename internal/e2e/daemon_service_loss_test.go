package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/internal/daemontest"
	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/internal/gitserve"
	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/schema"
	"github.com/swarmsync/swarmsync/sync/webhook"
)

// lossSubnet is the lab subnet of TestDaemonServiceLeaderLoss
// (10.247.28.0/24; the other AWS scenarios use 21-27).
const lossSubnet = 28

// leaderLossEnv opts in to TestDaemonServiceLeaderLoss.
const leaderLossEnv = "SWARMSYNC_E2E_LEADER_LOSS"

// TestDaemonServiceLeaderLoss loses the Swarm leader's machine while the
// reconciler, deployed as deploy/stack.yml's global service on 3 managers
// of a cluster on the AWS path (as in TestDaemonServiceOnAWSPath), is in
// the middle of a scale-up, with a real Prometheus scraping the three
// daemons.
//
// A push raises the workers 2 → 4 (and the schedule to every 4 s) and a
// signed webhook goes to the leader's task. Once one new worker has
// joined, the leader's machine dies: its dockerd and the task's process
// are killed (a crash: no task is stopped gracefully, no lease released),
// then its instance is terminated through the emulator, which stops the
// machine. Another manager becomes the leader; its task starts a pass
// (trigger leader), takes over the killed daemon's apply lease instead of
// waiting out its TTL, replaces the lost manager (the emulator launches
// an instance, the booter boots and joins it) and completes the workers.
// Throughout, a watcher checks through every manager's engine that the
// Swarm never loses its quorum.
//
// Opt-in (SWARMSYNC_E2E_LEADER_LOSS=1), not run by CI: in about one run in
// ten on a 2-core machine, Swarm marks the NEW leader's own node Down right
// after the election ("heartbeat failure for node in \"unknown\" state":
// its agent never registers again with the new dispatcher) although its
// engine runs and leads; Swarm then shuts the global service's task down
// on that node, so no daemon runs on the leader and the cluster is not
// restored. That is a limit of running the reconciler as a Swarm service,
// not a flake of the test; CI covers leader loss with the daemons as
// processes (cmd/swarmsync TestDaemonGitOpsOnLabManagers).
func TestDaemonServiceLeaderLoss(t *testing.T) {
	if os.Getenv(leaderLossEnv) == "" {
		t.Skip("opt-in: set " + leaderLossEnv + "=1 (see the test's comment for why CI does not run it)")
	}
	testenv.NeedCommands(t, "docker", "go", "git", "prometheus")
	aw := NewAWSWorldDetail(t, "awsloss", lossSubnet)
	w := aw.World
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()

	// 3 active managers (the tasks run there) and 2 workers; an hourly
	// schedule until the push. joinTimeout 2m: the planner removes the
	// entry of a join cut short by the kill (a ghost) after it, within the
	// test's time, and a machine booting slowly on a loaded host is not
	// replaced before.
	spec := withCounts(w.Spec, 3, 2)
	spec.Schedule.Reconcile = "@every 1h"
	spec.Managers.Availability = "active"
	if err := spec.Update.JoinTimeout.UnmarshalJSON([]byte(`"2m"`)); err != nil {
		t.Fatal(err)
	}
	repo := gitserve.NewRepo(t, filepath.Join(t.TempDir(), "specs"))
	c1 := repo.Commit(map[string]string{"cluster.yaml": specFile(t, spec)}, "3 managers, 2 workers")

	start := time.Now()
	MustConverge(ctx, t, w, spec, &Recorder{})
	t.Logf("FIGURE aws bootstrap 3 managers + 2 workers: %s", time.Since(start).Round(10*time.Millisecond))

	s := deployService(ctx, t, aw, lossSubnet, spec, repo, c1)
	leader, followers := s.leader, s.followers

	var targets []string
	for _, d := range s.daemons {
		targets = append(targets, d.addr)
	}
	prom := testenv.StartPrometheus(t, targets)
	var v float64
	if err := lab.Poll(ctx, func() (bool, error) {
		v, _ = testenv.PromQuery(prom, `count(up{job="swarmsync"} == 1)`)
		return v == 3, nil
	}); err != nil {
		t.Fatalf("prometheus scrapes %v of the 3 daemons", v)
	}
	watch := startServiceQuorumWatch(t, aw)

	// The task's process on the leader's machine, killed with its dockerd.
	taskPID := taskProcess(t, leader)
	machineDir := filepath.Dir(strings.TrimPrefix(leader.endpoint, "unix://"))
	dockerdPID := machinePID(t, filepath.Join(machineDir, "dockerd.pid"), machineDir)

	up := withCounts(spec, 3, 4)
	up.Schedule.Reconcile = "@every 4s"
	c2 := repo.Commit(map[string]string{"cluster.yaml": specFile(t, up)}, "4 workers, every 4s")
	repo.Push(s.bare)
	body := []byte(`{"ref":"refs/heads/main","after":"` + c2 + `"}`)
	if code := daemontest.PostWebhook(t, leader.addr, body, webhook.HeaderGitHubSignature, webhook.SignGitHub(s.secret, body), webhook.HeaderGitHubDelivery, "loss-1"); code != 202 {
		t.Fatalf("webhook to the leader answered %d, want 202", code)
	}
	var ready int
	if err := lab.Poll(ctx, func() (bool, error) {
		n, err := readyWorkers(ctx, leader)
		ready = n
		return err == nil && n > 2, nil
	}); err != nil {
		t.Fatalf("no new worker joined for commit %.8s: %d Ready workers: %v\n%s", c2, ready, err, serviceLogs(s.daemons))
	}
	// The lease the leader's task holds in its pass (it waits for the
	// second worker's join): the new leader's task takes it over at once
	// (its holder's node is down) instead of waiting out the 60 s TTL.
	lsw, err := docker.New(leader.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	held, err := lsw.ReadLease(ctx)
	lsw.Close()
	if err != nil {
		t.Fatal(err)
	}

	killed := time.Now()
	_ = syscall.Kill(dockerdPID, syscall.SIGKILL)
	_ = syscall.Kill(taskPID, syscall.SIGKILL)
	terminated := make(chan error, 1)
	go func() { terminated <- aw.Cloud.Terminate(context.Background(), spec.Name, []string{leader.inst.ID}) }()
	s.setLive(followers)
	t.Logf("killed the leader's machine %s (%s) at %s; lease held: %v (%s, expires in %s)", leader.inst.ID, leader.addr,
		killed.Format("15:04:05.000"), held.Held && !held.Expired(), held.Lease.ID, held.Lease.Expiry.Sub(held.Now).Round(time.Second))

	// A new leader: both followers asked at once, so that one blocking
	// during the election does not delay seeing the other.
	var next *serviceDaemon
	var elected time.Time
	if err := lab.Poll(ctx, func() (bool, error) {
		found := make(chan *serviceDaemon, len(followers))
		for _, d := range followers {
			go func() {
				sw, err := docker.New(d.endpoint)
				if err != nil {
					found <- nil
					return
				}
				defer sw.Close()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if ok, err := sw.IsLeader(cctx); err == nil && ok {
					found <- d
					return
				}
				found <- nil
			}()
		}
		for range followers {
			if d := <-found; d != nil && next == nil {
				next, elected = d, time.Now()
			}
		}
		return next != nil, nil
	}); err != nil {
		t.Fatalf("no new leader among the followers: %v\n%s", err, serviceLogs(followers))
	}
	t.Logf("FIGURE leader machine killed → new leader elected (seen, polled every %s): %s", lab.PollInterval, elected.Sub(killed).Round(time.Millisecond))
	// The pass started on becoming leader, seen in /status; it may be over
	// and followed by a scheduled one (every 4 s) before the test looks
	// (it can fail at once: the killed holder's node may not be seen down
	// yet, so its lease is still held), so the task's log line also counts.
	var st apply.LoopStatus
	var passStart time.Time
	if err := lab.Poll(ctx, func() (bool, error) {
		st, err = next.status()
		if err == nil && st.LastTrigger == apply.TriggerLeader && st.LastStart.After(killed) {
			passStart = st.LastStart
			return true, nil
		}
		passStart = leaderPassStart(taskLogs(next), killed)
		return !passStart.IsZero(), nil
	}); err != nil {
		t.Fatalf("the new leader's task started no pass: %+v\n%s", st, serviceLogs(followers))
	}
	// The test sees the election late (each follower is asked for up to
	// 2 s): a negative figure means the daemon acted before the test saw.
	t.Logf("FIGURE new leader elected → its task's pass started: %s", passStart.Sub(elected).Round(time.Millisecond))
	if err := <-terminated; err != nil {
		t.Fatalf("terminating the killed leader's instance through the emulator: %v", err)
	}

	// The replacement manager joins without the image (there is no
	// registry): the global service's task on it cannot start, which is
	// expected; the two remaining tasks carry on.
	waitServiceShape(ctx, t, next, c2, 3, 4, followers)
	t.Logf("FIGURE leader machine killed → 3 Ready managers and 4 Ready workers, nothing else: %s", time.Since(killed).Round(10*time.Millisecond))

	if held.Held && !held.Expired() {
		var took string
		for _, line := range strings.Split(taskLogs(next), "\n") {
			if strings.Contains(line, "took over the apply lease") && strings.Contains(line, held.Lease.ID) {
				took = line
			}
		}
		if took == "" {
			t.Errorf("the new leader's task did not take over the killed leader's lease %s (held until %s)\n%s", held.Lease.ID, held.Lease.Expiry, serviceLogs([]*serviceDaemon{next}))
		} else {
			t.Logf("FIGURE takeover seen: %s", took)
		}
	} else {
		t.Logf("FIGURE takeover not applicable: the killed leader held no live lease at the kill (%+v)", held)
	}

	samples, leaderless, lost := watch()
	if len(lost) > 0 {
		t.Errorf("quorum lost in %d of %d samples:\n%s", len(lost), samples, strings.Join(lost, "\n"))
	}
	t.Logf("FIGURE quorum watch: %d samples, none below quorum; %d (%s) without any manager answering during the election", samples, leaderless, time.Duration(leaderless)*300*time.Millisecond)

	// Prometheus. A pass is counted when it ends, so the killed leader's
	// last pass (whose launch of the 2 workers was under way) is never
	// counted; the new leader's launch of the replacement manager is. The
	// killed daemon's series go stale when its scrapes fail; max_over_time
	// keeps what a task counted before Swarm restarted it (after a leader
	// change Swarm may see a manager down for a moment and restart the
	// global service's task there).
	for _, c := range []struct {
		q    string
		want func(float64) bool
		what string
	}{
		{`sum(max_over_time(swarmsync_passes_total{trigger="leader",instance="` + next.addr + `"}[1h]))`, func(v float64) bool { return v >= 1 }, "≥ 1"},
		{`sum(max_over_time(swarmsync_steps_total{action="launch",result="done"}[1h]))`, func(v float64) bool { return v >= 1 }, "≥ 1"},
		{`sum(swarmsync_leader)`, func(v float64) bool { return v == 1 }, "1"},
		{`up{instance="` + leader.addr + `"}`, func(v float64) bool { return v == 0 }, "0"},
	} {
		var v float64
		var ok bool
		pctx, pcancel := context.WithTimeout(ctx, 60*time.Second)
		err := lab.Poll(pctx, func() (bool, error) { v, ok = testenv.PromQuery(prom, c.q); return ok && c.want(v), nil })
		pcancel()
		if err != nil {
			t.Errorf("prometheus: %s = %v (result %v), want %s", c.q, v, ok, c.what)
		} else {
			t.Logf("FIGURE prometheus: %s = %v", c.q, v)
		}
	}

	// No duplicate launch: managers 3 + the replacement; workers 2 + the
	// 2 launched by the killed leader's task, plus at most one replaced
	// after joinTimeout (a worker whose join went through the killed
	// manager and was cut short never completes).
	ever, live := map[string]int{}, map[string]int{}
	for _, in := range aw.Sim.Instances() {
		g := in.Tags[providers.TagGroup]
		ever[g]++
		if in.State == ec2sim.StateRunning || in.State == ec2sim.StatePending {
			live[g]++
		}
	}
	const workers = "workers/general"
	for _, in := range aw.Sim.Instances() {
		t.Logf("instance %s %s %s, launched %s", in.ID, in.Tags[providers.TagGroup], in.State, in.LaunchedAt.Format("15:04:05.000"))
	}
	t.Logf("FIGURE instances ever launched: %d managers, %d workers; live %d and %d", ever[schema.ManagersGroup], ever[workers], live[schema.ManagersGroup], live[workers])
	if ever[schema.ManagersGroup] != 4 || live[schema.ManagersGroup] != 3 || ever[workers] < 4 || ever[workers] > 5 || live[workers] != 4 {
		t.Errorf("instances: ever %v, live %v; want managers 4 ever (3 and the replacement) and 3 live, workers 4 ever (5 with one replaced) and 4 live", ever, live)
	}
	CheckShape(ctx, t, w, up)
}

// taskProcess returns the host pid of the service task's process on d's
// engine.
func taskProcess(t *testing.T, d *serviceDaemon) int {
	t.Helper()
	ids := strings.Fields(dockerCLI(t, d.endpoint, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+serviceName))
	if len(ids) != 1 {
		t.Fatalf("%d running task containers on %s, want 1", len(ids), d.inst.ID)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(dockerCLI(t, d.endpoint, "inspect", "--format", "{{.State.Pid}}", ids[0])))
	if err != nil || pid <= 0 {
		t.Fatalf("the task container %s on %s has no process (%d, %v)", ids[0], d.inst.ID, pid, err)
	}
	return pid
}

// machinePID reads a machine's pid file and checks that the process is
// the machine's own (its command line names the machine's directory).
func machinePID(t *testing.T, pidFile, dir string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", pidFile, err)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) {
		t.Fatalf("pid %d of %s is not the machine's process (%v): %q", pid, pidFile, err, cmdline)
	}
	return pid
}

// leaderPassStart is the time of the first "pass started" trigger=leader
// line after since in a task's logs (zero if none).
func leaderPassStart(logs string, since time.Time) time.Time {
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `msg="pass started" trigger=leader`) {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, ts); err == nil && at.After(since) {
			return at
		}
	}
	return time.Time{}
}

// taskLogs returns the logs of every task container on d's engine.
func taskLogs(d *serviceDaemon) string {
	var b strings.Builder
	for _, id := range strings.Fields(dockerOutput(d.endpoint, "ps", "-aq", "--filter", "label=com.docker.swarm.service.name="+serviceName)) {
		b.WriteString(dockerOutput(d.endpoint, "logs", id))
	}
	return b.String()
}

// waitServiceShape waits until d's task applied commit ok with no step
// left, and the Swarm seen from d's manager has exactly managers Ready
// managers and workers Ready workers, and no other node.
func waitServiceShape(ctx context.Context, t *testing.T, d *serviceDaemon, commit string, managers, workers int, ds []*serviceDaemon) {
	t.Helper()
	sw, err := docker.New(d.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	var got string
	maxGhosts := 0
	defer func() {
		if maxGhosts > 0 {
			t.Logf("commit %.8s: %d ghost entries (joins cut short) seen, removed by the planner", commit, maxGhosts)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if err := lab.Poll(wctx, func() (bool, error) {
		st, err := d.status()
		if err != nil || st.LastCommit != commit || st.LastResult != apply.ResultOK || st.LastSteps != 0 {
			got = fmt.Sprintf("daemon %+v %v", st, err)
			return false, nil
		}
		obs, err := sw.Observe(wctx)
		if err != nil {
			got = err.Error()
			return false, nil
		}
		m, w, ghosts := 0, 0, 0
		var others []string
		for _, n := range obs.Nodes {
			switch {
			case n.State != providers.NodeReady && n.InstanceID() == "" && n.Hostname == "":
				// A ghost entry: a join cut short (through the killed
				// manager) that Swarm kept under a node id no engine ever
				// described; the planner removes it after joinTimeout.
				ghosts++
				others = append(others, fmt.Sprintf("%s (ghost: %s, created %s)", n.ID, n.State, n.CreatedAt.Format(time.TimeOnly)))
			case n.State != providers.NodeReady:
				others = append(others, fmt.Sprintf("%s (%s, %s, instance %q)", n.ID, n.Role, n.State, n.InstanceID()))
			case n.Role == providers.RoleManager:
				m++
			default:
				w++
			}
		}
		got = fmt.Sprintf("%d managers, %d workers Ready, other nodes %v", m, w, others)
		maxGhosts = max(maxGhosts, ghosts)
		return m == managers && w == workers && len(others) == 0, nil
	}); err != nil {
		t.Fatalf("commit %.8s: %s; want %d and %d Ready and nothing else\n%s", commit, got, managers, workers, serviceLogs(ds))
	}
}

// startServiceQuorumWatch watches the quorum through the world's running
// managers' engines (daemontest.StartQuorumWatch).
func startServiceQuorumWatch(t *testing.T, aw *AWSWorld) (stop func() (int, int, []string)) {
	return daemontest.StartQuorumWatch(t, func(ctx context.Context) []daemontest.Manager {
		insts, _ := aw.Cloud.Instances(ctx, aw.Spec.Name)
		var ms []daemontest.Manager
		for _, in := range insts {
			if in.Group != schema.ManagersGroup || in.State != providers.StateRunning {
				continue
			}
			if ep, ok := aw.Booter.Endpoint(in.ID); ok {
				ms = append(ms, daemontest.Manager{ID: in.ID, Endpoint: ep})
			}
		}
		return ms
	})
}
