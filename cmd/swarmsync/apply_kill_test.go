package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/providers/local"
	"github.com/swarmsync/swarmsync/schema"
)

// killLab drives the CLI against real local machines: in-process applies
// to converge, and `swarmsync apply` processes to SIGKILL.
type killLab struct {
	t     *testing.T
	cloud *local.Cloud
	bin   string
	repo  string
	tmpl  string
	// output is everything any run printed (stdout and stderr).
	output strings.Builder
	// tokens are the join tokens seen at each check.
	tokens []string
	// subnet is the lab subnet leased for the spec.
	subnet string
	// workerToken is the worker join token at the last check.
	workerToken string
	// launched is how many instances the test expects to have been
	// launched so far (live or terminated).
	launched int
}

func newKillLab(t *testing.T) *killLab {
	t.Helper()
	cloud, subnet := localLab(t, "killlab")
	// The test binary runs as swarmsync when called by that name
	// (testscript.Main in TestMain).
	bin := filepath.Join(t.TempDir(), "swarmsync")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	return &killLab{t: t, cloud: cloud, subnet: subnet, bin: bin, repo: t.TempDir(), tmpl: fastUserData(t)}
}

// fastUserData is the default local user-data template with a 1s
// dispatcher heartbeat (a terminated worker's node is Down in about 3s
// instead of 15s), indented as a YAML block for a spec's userData.
func fastUserData(t *testing.T) string {
	t.Helper()
	fast := lab.FastTemplate(t, "local")
	var ind strings.Builder
	for _, l := range strings.SplitAfter(strings.TrimRight(fast, "\n"), "\n") {
		ind.WriteString("  " + l)
	}
	ind.WriteString("\n")
	return ind.String()
}

func (k *killLab) setWorkers(n int) {
	k.t.Helper()
	writeLabSpec(k.t, k.repo, "killlab", k.subnet, 1, n, k.tmpl)
}

// run runs the CLI in-process and records its output.
func (k *killLab) run(args ...string) (int, string) {
	var out, errb strings.Builder
	code := Main(append(args, "--repo", k.repo), strings.NewReader(""), &out, &errb)
	k.output.WriteString(out.String() + errb.String())
	return code, out.String() + errb.String()
}

// converge runs apply until the plan is empty and notes nothing (at most 3
// applies). A plan may carry notes: a node whose instance a killed apply
// terminated stays Ready until its heartbeat lapses, and the planner
// removes it on a later pass. After an apply whose plan had notes, the test
// polls the plan (at most 20s) until the notes give way to steps or to
// nothing. Steps planned after an apply whose plan had no notes fail:
// apply left its work undone.
func (k *killLab) converge(what string) {
	k.t.Helper()
	for pass := 1; ; pass++ {
		before := k.plan(what) // what the apply is about to plan
		if code, out := k.run("apply", "--yes"); code != 0 {
			k.t.Fatalf("%s: apply: exit %d\n%s", what, code, out)
		}
		p := k.plan(what)
		switch {
		case len(p.Steps) == 0 && len(p.Notes) == 0:
			if pass > 1 {
				k.t.Logf("%s: converged in %d applies", what, pass)
			}
			return
		case len(before.Notes) == 0:
			k.t.Fatalf("%s: after apply %d (a plan without notes), the plan has steps %v, notes %v", what, pass, actions(p), p.Notes)
		case pass == 3:
			k.t.Fatalf("%s: not converged after %d applies: steps %v, notes %v", what, pass, actions(p), p.Notes)
		}
		k.t.Logf("%s: apply %d planned notes: %v", what, pass, before.Notes)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := lab.Poll(ctx, func() (bool, error) {
			p = k.plan(what)
			return len(p.Notes) == 0, nil
		})
		cancel()
		if err != nil {
			k.t.Fatalf("%s: the notes did not clear: %v: %v", what, p.Notes, err)
		}
	}
}

// plan is the plan as it stands.
func (k *killLab) plan(what string) *plan.Plan {
	k.t.Helper()
	code, out := k.run("plan", "--format", "json")
	if code != 0 {
		k.t.Fatalf("%s: plan: exit %d\n%s", what, code, out)
	}
	p, err := plan.UnmarshalPlan([]byte(out))
	if err != nil {
		k.t.Fatalf("%s: plan --format json: %v\n%s", what, err, out)
	}
	return p
}

func actions(p *plan.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, string(s.Action))
	}
	return out
}

// killAt runs `swarmsync apply --format json` as a process and SIGKILLs it
// when the at-th step_started event (0-based) arrives. It returns the
// actions of the plan the process showed, in order, and the id of the step
// it was killed at.
func (k *killLab) killAt(at int) (actions []string, killed string) {
	k.t.Helper()
	cmd := exec.Command(k.bin, "apply", "--repo", k.repo, "--yes", "--format", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		k.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	started := 0
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		k.output.WriteString(sc.Text() + "\n")
		var ev applyEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			k.t.Errorf("not a JSON event: %s", sc.Text())
			continue
		}
		switch ev.Type {
		case "plan":
			for _, s := range ev.Plan.Steps {
				actions = append(actions, string(s.Action))
			}
		case "step_started":
			if started == at {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					k.t.Fatal(err)
				}
				killed = ev.Step
			}
			started++
		}
		if killed != "" {
			break
		}
	}
	_ = cmd.Wait()
	k.output.WriteString(stderr.String())
	if killed == "" {
		k.t.Fatalf("the apply ended before step %d started (plan %v); stderr:\n%s", at, actions, stderr.String())
	}
	k.unlockDead(cmd.Process.Pid)
	return actions, killed
}

// unlockDead removes, with `swarmsync force-unlock`, the apply lease that
// the killed process pid left on the Swarm (it would refuse applies until
// it expires). A process killed as it finished has released it already.
func (k *killLab) unlockDead(pid int) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := k.cloud.ManagerEndpoints(ctx, "killlab")
	if err != nil {
		k.t.Fatal(err)
	}
	leader, err := docker.FindLeader(ctx, eps)
	if err != nil {
		k.t.Fatal(err)
	}
	defer leader.Close()
	st, err := leader.ReadLease(ctx)
	if err != nil {
		k.t.Fatal(err)
	}
	if !st.Held {
		// The signal came after the apply's last step, as it released
		// the lease.
		k.t.Logf("the killed apply (pid %d) had released its lease", pid)
		return
	}
	if st.Lease.PID != pid {
		k.t.Fatalf("the Swarm holds a lease of pid %d, not of the killed apply (pid %d): %+v", st.Lease.PID, pid, st.Lease)
	}
	if code, out := k.run("force-unlock", st.Lease.ID, "--yes"); code != 0 || !strings.Contains(out, "Removed apply lease "+st.Lease.ID) {
		k.t.Fatalf("force-unlock %s: exit %d\n%s", st.Lease.ID, code, out)
	}
}

// check asserts the exact shape: one live manager and want live workers,
// each with exactly one Ready node; no node without a live instance; no
// instance launched beyond those expected (a duplicate launch, even one
// later terminated, shows here); no machine left behind by a terminated
// instance.
func (k *killLab) check(what string, want int) {
	k.t.Helper()
	t := k.t
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	insts, err := k.cloud.Instances(ctx, "killlab")
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]providers.Instance{}
	perGroup := map[string]int{}
	for _, in := range insts {
		if in.State.Live() {
			live[in.ID] = in
			perGroup[in.Group]++
		} else if _, err := os.Stat("/var/run/netns/" + local.NetnsName(in.ID)); err == nil {
			t.Errorf("%s: instance %s is %s but its machine (netns) is still there", what, in.ID, in.State)
		}
	}
	if perGroup[schema.ManagersGroup] != 1 || perGroup["workers/general"] != want || len(live) != 1+want {
		t.Errorf("%s: live instances per group %v, want 1 manager and %d workers", what, perGroup, want)
	}
	if len(insts) != k.launched {
		t.Errorf("%s: %d instances were ever launched, want %d (a duplicate launch?)", what, len(insts), k.launched)
	}
	eps, err := k.cloud.ManagerEndpoints(ctx, "killlab")
	if err != nil {
		t.Fatal(err)
	}
	leader, err := docker.FindLeader(ctx, eps)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	// A node that has just joined may take a moment to report Ready.
	var st providers.SwarmState
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	_ = lab.Poll(pctx, func() (bool, error) {
		if st, err = leader.Observe(ctx); err != nil {
			return false, err
		}
		for _, n := range st.Nodes {
			if n.State != providers.NodeReady {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]int{}
	for _, n := range st.Nodes {
		id := n.InstanceID()
		nodes[id]++
		if _, ok := live[id]; !ok {
			t.Errorf("%s: node %s (%s) is orphaned: instance %q is not live", what, n.ID, n.State, id)
		}
		if n.State != providers.NodeReady {
			t.Errorf("%s: node %s of %s is %s", what, n.ID, id, n.State)
		}
	}
	for id := range live {
		if nodes[id] != 1 {
			t.Errorf("%s: live instance %s has %d nodes, want 1", what, id, nodes[id])
		}
	}
	tok, err := leader.JoinTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k.tokens = append(k.tokens, tok.Worker, tok.Manager)
	k.workerToken = tok.Worker
}

// TestApplyKilledAtEveryStep SIGKILLs a real `swarmsync apply` process at
// every step index of a scale-up (workers 1 → 2) and of a scale-down
// (2 → 1) in turn, removes the lease it left with force-unlock, runs apply
// again each time, and checks that the cluster
// converges to the exact shape with no duplicate and no orphaned instance
// or node, that the worker join token a new worker joined with was rotated
// (joinTokens.rotateAfterJoin), and that no join token appears in any
// output.
func TestApplyKilledAtEveryStep(t *testing.T) {
	k := newKillLab(t)
	k.setWorkers(1)
	k.launched = 2
	k.converge("bootstrap")
	k.check("bootstrap", 1)

	// The plans' lengths are learnt from the first killed runs; every
	// later run must show a plan of the same actions.
	var upPlan, downPlan []string
	for i := 0; i == 0 || i < max(len(upPlan), len(downPlan)); i++ {
		for _, phase := range []struct {
			name    string
			workers int
			plan    *[]string
		}{
			{"scale-up", 2, &upPlan},
			{"scale-down", 1, &downPlan},
		} {
			k.setWorkers(phase.workers)
			before := k.workerToken
			if phase.workers == 2 {
				k.launched++
			}
			what := fmt.Sprintf("%s, step %d", phase.name, i)
			if i == 0 || i < len(*phase.plan) {
				steps, killed := k.killAt(i)
				if *phase.plan != nil && strings.Join(steps, " ") != strings.Join(*phase.plan, " ") {
					t.Fatalf("%s: the plan changed between runs: %v, before %v", what, steps, *phase.plan)
				}
				*phase.plan = steps
				what += " (" + killed + ")"
				t.Logf("%s: killed; the next plan: %v", what, actions(k.plan(what)))
			}
			k.converge(what)
			k.check(what, phase.workers)
			// joinTokens.rotateAfterJoin (the default): the token the new
			// worker joined with no longer works.
			if phase.workers == 2 && k.workerToken == before {
				t.Errorf("%s: the worker join token used by the new worker was not rotated", what)
			}
		}
	}
	t.Logf("killed at each of the %d steps of the scale-up %v and the %d of the scale-down %v",
		len(upPlan), upPlan, len(downPlan), downPlan)
	if len(upPlan) < 2 || len(downPlan) < 2 {
		t.Errorf("plans of %d and %d steps: the scenario no longer scales", len(upPlan), len(downPlan))
	}

	out := k.output.String()
	if strings.Contains(out, "SWMTKN-") {
		t.Error("a join token appears in the output")
	}
	for _, tok := range k.tokens {
		if tok != "" && strings.Contains(out, tok) {
			t.Error("a join token of the cluster appears in the output")
		}
	}
}
