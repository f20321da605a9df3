package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/providers/docker"
)

// applyProc is one `swarmsync apply` process and what it ended with.
type applyProc struct {
	cmd            *exec.Cmd
	code           int
	stdout, stderr strings.Builder
}

// startApply starts `swarmsync apply --yes` with extra args.
func (k *killLab) startApply(args ...string) *applyProc {
	k.t.Helper()
	p := &applyProc{cmd: exec.Command(k.bin, append([]string{"apply", "--repo", k.repo, "--yes"}, args...)...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	return p
}

func (k *killLab) wait(p *applyProc) {
	k.t.Helper()
	err := p.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		p.code = ee.ExitCode()
	default:
		k.t.Fatal(err)
	}
	k.output.WriteString(p.stdout.String() + p.stderr.String())
}

// TestApplyLeaseOneApplier starts five `swarmsync apply --yes` processes
// together on one scale-up: exactly one acts, the four others refuse,
// naming the holder's host, pid and age, and the cluster ends in the exact
// shape with no duplicate launch. Then the holder of a short lease is
// killed (-9) mid-apply: the next apply is refused while the lease lives,
// takes it once it has expired on the Swarm's clock, and converges.
func TestApplyLeaseOneApplier(t *testing.T) {
	k := newKillLab(t)
	k.setWorkers(1)
	k.launched = 2
	k.converge("bootstrap")
	k.check("bootstrap", 1)

	k.setWorkers(3)
	k.launched += 2
	procs := make([]*applyProc, 5)
	var wg sync.WaitGroup
	for i := range procs {
		procs[i] = k.startApply()
	}
	for _, p := range procs {
		wg.Go(func() { k.wait(p) })
	}
	wg.Wait()
	var winner *applyProc
	for _, p := range procs {
		if p.code == 0 {
			if winner != nil {
				t.Fatalf("two applies succeeded:\n%s\n---\n%s", winner.stdout.String(), p.stdout.String())
			}
			winner = p
		}
	}
	if winner == nil {
		t.Fatalf("no apply succeeded; stderr of the first: %s", procs[0].stderr.String())
	}
	for _, p := range procs {
		if p == winner {
			continue
		}
		msg := p.stderr.String()
		if p.code != 1 || !strings.Contains(msg, `held by "apply"`) || !strings.Contains(msg, fmt.Sprintf("(pid %d)", winner.cmd.Process.Pid)) ||
			!strings.Contains(msg, " ago") || !strings.Contains(msg, "nothing was changed") {
			t.Errorf("a losing apply exited %d with %q; want 1, naming the holder (pid %d) and its age", p.code, msg, winner.cmd.Process.Pid)
		}
		if strings.Contains(p.stdout.String(), "launch") {
			t.Errorf("a losing apply showed a plan: %s", p.stdout.String())
		}
	}
	k.check("five applies at once", 3)

	// The holder of a short lease dies mid-apply.
	const ttl = 4 * time.Second
	t.Setenv(leaseTTLEnv, ttl.String())
	k.setWorkers(4)
	k.launched++
	_, killed, pid := k.killAtAwait()
	killedAt := time.Now()
	t.Logf("killed the holder (pid %d) at %s", pid, killed)
	code, out := k.run("apply", "--yes")
	if code != 1 || !strings.Contains(out, fmt.Sprintf("(pid %d)", pid)) {
		t.Fatalf("apply right after the holder died: exit %d, %s; want a refusal naming pid %d", code, out, pid)
	}
	for {
		code, out = k.run("apply", "--yes")
		if code == 0 {
			break
		}
		if !strings.Contains(out, "is held by") {
			t.Fatalf("apply after the holder died: exit %d: %s", code, out)
		}
		if time.Since(killedAt) > 3*ttl {
			t.Fatalf("the dead holder's lease (TTL %s) still refuses applies after %s: %s", ttl, time.Since(killedAt).Round(time.Second), out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("an apply took the lease %s after its holder was killed (TTL %s)", time.Since(killedAt).Round(100*time.Millisecond), ttl)
	k.converge("after the lease expired")
	k.check("after the lease expired", 4)

	// destroy takes the lease too: refused while another holds it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eps, err := k.cloud.ManagerEndpoints(ctx, "killlab")
	if err != nil {
		t.Fatal(err)
	}
	leader, err := docker.FindLeader(ctx, eps)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	err = apply.Hold(ctx, leader, apply.LeaseOptions{Holder: "apply --auto", TTL: time.Minute}, func(ctx context.Context, _ *apply.Lease) error {
		code, out := k.run("destroy", "--cluster", "killlab", "--yes")
		if code != 1 || !strings.Contains(out, `refusing to destroy, nothing was changed: the apply lease of this Swarm is held by "apply --auto"`) {
			t.Errorf("destroy under another's lease: exit %d: %s", code, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	k.check("after a refused destroy", 4)
}

// killAtAwait runs `swarmsync apply --format json` and SIGKILLs it when
// its first await-join step starts (its launch done, the lease renewed
// meanwhile). It returns the plan's actions, the killed step and the pid.
func (k *killLab) killAtAwait() (actions []string, killed string, pid int) {
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
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() && killed == "" {
		k.output.WriteString(sc.Text() + "\n")
		var ev applyEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue
		}
		switch {
		case ev.Type == "plan":
			for _, s := range ev.Plan.Steps {
				actions = append(actions, string(s.Action))
			}
		case ev.Type == "step_started" && ev.Action == "await-join":
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				k.t.Fatal(err)
			}
			killed = ev.Step
		}
	}
	_ = cmd.Wait()
	if killed == "" {
		k.t.Fatalf("the apply ended before an await-join step (plan %v); stderr:\n%s", actions, stderr.String())
	}
	return actions, killed, cmd.Process.Pid
}
