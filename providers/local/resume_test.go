package local_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/local"
)

// Environment of the child process that TestInterruptedCalls kills.
const (
	crashEnvPoint  = "SWARMSYNC_TEST_CRASH_POINT"
	crashEnvDir    = "SWARMSYNC_TEST_CRASH_DIR"
	crashEnvSubnet = "SWARMSYNC_TEST_CRASH_SUBNET"
	crashEnvIDs    = "SWARMSYNC_TEST_CRASH_IDS"
)

// crashChild runs in the child process: it launches (or terminates) and
// SIGKILLs itself at the crash point, as `kill -9` would.
func crashChild(t *testing.T) {
	point := os.Getenv(crashEnvPoint)
	c, err := local.New(lab.CloudConfig(os.Getenv(crashEnvDir), os.Getenv(crashEnvSubnet)))
	if err != nil {
		t.Fatal(err)
	}
	local.SetCrashHook(func(p string) {
		if p == point {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	})
	ctx := context.Background()
	if ids := os.Getenv(crashEnvIDs); ids != "" {
		err = c.Terminate(ctx, "crash", []string{ids})
	} else {
		_, err = c.Launch(ctx, providers.LaunchRequest{
			Cluster: "crash", Group: "workers/a", Count: 1, Image: "dockerd", InstanceType: "netns",
			UserData: userData, IdempotencyToken: "crash-1",
		})
	}
	t.Fatalf("the call returned (%v) instead of being killed at %s", err, point)
}

// TestInterruptedCalls kills a process inside Launch and Terminate and
// checks that the next call, from another process, finishes the work as a
// cloud would: a machine whose dockerd runs is booted to the end (its user
// data runs once), one that had not started is terminated, and a teardown
// is completed (no machine left behind).
func TestInterruptedCalls(t *testing.T) {
	if os.Getenv(crashEnvPoint) != "" {
		crashChild(t)
		return
	}
	subnet, dir := lab.Reserve(t, "crash")
	c, err := local.New(lab.CloudConfig(dir, subnet))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		all, _ := c.Instances(context.Background(), "crash")
		var ids []string
		for _, in := range all {
			if in.State != providers.StateTerminated {
				ids = append(ids, in.ID)
			}
		}
		if len(ids) > 0 {
			if err := c.Terminate(context.Background(), "crash", ids); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	crash := func(point, id string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestInterruptedCalls$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvPoint+"="+point, crashEnvDir+"="+dir, crashEnvSubnet+"="+subnet, crashEnvIDs+"="+id)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("the child was not killed at %s: %v\n%s", point, err, out)
		}
	}
	// The state a killed call leaves, as any later process sees it.
	states := func() map[string]providers.InstanceState {
		t.Helper()
		all, err := c.Instances(ctx, "crash")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]providers.InstanceState{}
		for _, in := range all {
			m[in.ID] = in.State
		}
		return m
	}
	gone := func(id string) {
		t.Helper()
		if _, err := os.Stat("/var/run/netns/" + local.NetnsName(id)); err == nil {
			t.Errorf("instance %s is terminated but its network namespace is still there", id)
		}
		if _, err := os.Stat(filepath.Join(dir, "instances", id, "data")); err == nil {
			t.Errorf("instance %s is terminated but its data directory is still there", id)
		}
	}

	// Killed before any machine was started: the launch fails.
	crash("launch-recorded", "")
	st := states()
	if len(st) != 1 {
		t.Fatalf("after a launch killed before boot: instances %v, want 1", st)
	}
	for id, s := range st {
		if s != providers.StateTerminated {
			t.Errorf("instance %s of a launch killed before boot is %s, want terminated", id, s)
		}
		gone(id)
	}
	// The same token returns the failed launch's instances.
	again, err := c.Launch(ctx, providers.LaunchRequest{
		Cluster: "crash", Group: "workers/a", Count: 1, Image: "dockerd", InstanceType: "netns",
		UserData: userData, IdempotencyToken: "crash-1",
	})
	if err != nil || len(again) != 1 || again[0].State != providers.StateTerminated {
		t.Fatalf("relaunch with the token of the failed launch: %v, %v; want its terminated instance", again, err)
	}

	// Killed while dockerd starts, user data staged: the next call
	// completes the boot and the user data runs once.
	if err := os.RemoveAll(filepath.Join(dir, "clusters", "crash", "launches")); err != nil {
		t.Fatal(err)
	}
	crash("boot-staged", "")
	var booted string
	for id, s := range states() {
		if _, first := st[id]; first {
			continue
		}
		booted = id
		if s != providers.StateRunning {
			t.Fatalf("instance %s of a launch killed while booting is %s, want running", id, s)
		}
	}
	if booted == "" {
		t.Fatal("the launch killed while booting left no instance")
	}
	logPath := filepath.Join(dir, "instances", booted, "user-data.log")
	var out []byte
	if err := poll(ctx, func() bool {
		out, _ = os.ReadFile(logPath)
		return bytes.Contains(out, []byte("user-data-done"))
	}); err != nil {
		t.Fatalf("the user data of the completed launch never finished: %v; log: %s", err, out)
	}
	if n := bytes.Count(out, []byte("user-data-done")); n != 1 {
		t.Errorf("the user data ran %d times, want once", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "instances", booted, "user-data.release")); err == nil {
		t.Error("the user data release FIFO is still there after the launch was completed")
	}

	// Killed during a terminate, machine still running: the next call
	// finishes the teardown.
	crash("teardown-recorded", booted)
	if s := states()[booted]; s != providers.StateTerminated {
		t.Fatalf("instance %s of a terminate killed half-way is %s, want terminated", booted, s)
	}
	gone(booted)
	if _, err := os.Stat(filepath.Join(dir, "clusters", "crash", "network.json")); err == nil {
		t.Error("the cluster's network is still recorded after its last instance was terminated")
	}
}
