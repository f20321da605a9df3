package main

import (
	"context"
	"os"
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
