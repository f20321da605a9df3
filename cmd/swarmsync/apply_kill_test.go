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

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
)

const killSpec = `name: killlab
provider:
  local:
    subnet: 10.247.17.0/24
managers:
  count: 1
workers:
  general:
    count: %d
update:
  joinTimeout: 2m
  drainTimeout: 1m
`

// TestApplyKilledMidwayConverges SIGKILLs a real `swarmsync apply` process
// when a given step starts (during a scale-up, then a scale-down), runs
// apply again, and checks that the cluster converges with no duplicate and
// no orphaned instance or node.
func TestApplyKilledMidwayConverges(t *testing.T) {
	cloud := localLab(t, "killlab", "ssk")
	// The test binary runs as swarmsync when called by that name
	// (testscript.Main in TestMain).
	bin := filepath.Join(t.TempDir(), "swarmsync")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	setWorkers := func(n int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(repo, "cluster.yaml"), []byte(fmt.Sprintf(killSpec, n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var output strings.Builder
	applyIn := func() {
		t.Helper()
		var out, errb strings.Builder
		if code := Main([]string{"apply", "--repo", repo, "--yes"}, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("apply: exit %d\n%s\n%s", code, out.String(), errb.String())
		}
		output.WriteString(out.String() + errb.String())
	}
	// killAt runs apply as a process and SIGKILLs it when the first step
	// with the given action starts.
	killAt := func(action string) {
		t.Helper()
		cmd := exec.Command(bin, "apply", "--repo", repo, "--yes", "--format", "json")
		cmd.Env = append(os.Environ(), localStateEnv+"="+os.Getenv(localStateEnv))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			output.WriteString(sc.Text() + "\n")
			var ev applyEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == "step_started" && string(ev.Action) == action {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
				break
			}
		}
		_ = cmd.Wait()
		output.WriteString(stderr.String())
		if !killed {
			t.Fatalf("the apply never started a %s step; stderr:\n%s", action, stderr.String())
		}
	}
	check := func(wantWorkers int) {
		t.Helper()
		ctx := context.Background()
		insts, err := cloud.Instances(ctx, "killlab")
		if err != nil {
			t.Fatal(err)
		}
		eps, err := cloud.ManagerEndpoints(ctx, "killlab")
		if err != nil {
			t.Fatal(err)
		}
		leader, err := docker.FindLeader(ctx, eps)
		if err != nil {
			t.Fatal(err)
		}
		defer leader.Close()
		st, err := leader.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		live := map[string]bool{}
		workers := 0
		for _, in := range insts {
			if in.State.Live() {
				live[in.ID] = true
				if in.Group == "workers/general" {
					workers++
				}
			}
		}
		if workers != wantWorkers {
			t.Errorf("%d live workers, want %d", workers, wantWorkers)
		}
		if len(st.Nodes) != len(live) {
			t.Errorf("%d nodes for %d live instances", len(st.Nodes), len(live))
		}
		for _, n := range st.Nodes {
			if !live[n.InstanceID()] || n.State != providers.NodeReady {
				t.Errorf("node %s (instance %q) is %s / orphaned", n.ID, n.InstanceID(), n.State)
			}
		}
	}

	setWorkers(1)
	applyIn()
	setWorkers(3)
	killAt("await-join") // after the launch: the instances exist, not joined yet
	applyIn()
	check(3)
	setWorkers(1)
	killAt("terminate") // after the first drain: a drained node, instance alive
	applyIn()
	check(1)
	if strings.Contains(output.String(), "SWMTKN-") {
		t.Error("a join token appears in the output")
	}
}
