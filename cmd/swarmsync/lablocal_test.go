package main

import (
	"context"
	"os"
	"testing"

	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/local"
)

// localLab prepares a CLI test that drives real local machines: it needs
// the lab, points SWARMSYNC_LOCAL_STATE at a fresh state directory, unsets
// DOCKER_HOST (so the CLI finds the leader among the managers), and
// terminates every instance of cluster when the test ends.
func localLab(t *testing.T, cluster, prefix string) *local.Cloud {
	t.Helper()
	testenv.NeedLab(t)
	testenv.NeedCommands(t, "docker")
	state, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(localStateEnv, state)
	t.Setenv("DOCKER_HOST", "")
	os.Unsetenv("DOCKER_HOST")
	cloud, err := local.New(local.Config{StateDir: state})
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
		os.RemoveAll(state)
	})
	return cloud
}
