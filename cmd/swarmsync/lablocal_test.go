package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/local"
)

// localLab prepares a CLI test that drives real local machines: it needs
// the lab, leases a subnet and a state directory no other lab uses (so
// test packages can run side by side), points SWARMSYNC_LOCAL_STATE at it,
// unsets DOCKER_HOST (so the CLI finds the leader among the managers), and
// terminates every instance of cluster when the test ends. It returns the
// local provider on that state and the subnet for the spec.
func localLab(t *testing.T, cluster string) (*local.Cloud, string) {
	t.Helper()
	testenv.NeedLab(t)
	testenv.NeedCommands(t, "docker")
	subnet, state := lab.Reserve(t, cluster)
	t.Setenv(localStateEnv, state)
	t.Setenv("DOCKER_HOST", "")
	os.Unsetenv("DOCKER_HOST")
	cloud, err := local.New(local.Config{StateDir: state, Subnet: subnet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		insts, _ := cloud.Instances(context.Background(), cluster)
		var ids []string
		for _, in := range insts {
			if in.State != providers.StateTerminated {
				ids = append(ids, in.ID)
			}
		}
		if len(ids) > 0 {
			if err := cloud.Terminate(context.Background(), cluster, ids); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return cloud, subnet
}

// writeLabSpec writes repo/cluster.yaml: a local cluster of managers and one
// worker group "general" of workers, with waits short enough for tests and,
// when userData is not empty, that (YAML-indented) user-data template.
func writeLabSpec(t *testing.T, repo, cluster, subnet string, managers, workers int, userData string) {
	t.Helper()
	spec := fmt.Sprintf(`name: %s
provider:
  local:
    subnet: %s
managers:
  count: %d
  availability: drain
workers:
  general:
    count: %d
update:
  joinTimeout: 2m
  drainTimeout: 1m
`, cluster, subnet, managers, workers)
	if userData != "" {
		spec += "userData: |\n" + userData
	}
	if err := os.WriteFile(filepath.Join(repo, "cluster.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
}

// cliRecorder runs the CLI entry point in this process and keeps every
// byte it printed, so a test can scan all of it (for join tokens).
type cliRecorder struct{ all bytes.Buffer }

// run runs swarmsync with args and returns its exit code, stdout and stderr.
func (r *cliRecorder) run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errb)
	r.all.WriteString(out.String() + errb.String())
	return code, out.String(), errb.String()
}
