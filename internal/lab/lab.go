package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/providers/local"
)

// Options shape a lab.
type Options struct {
	// Managers (≥1) and Workers are the node counts.
	Managers, Workers int
	// Cluster is the cluster name (default "lab").
	Cluster string
	// Heartbeat is the dispatcher heartbeat; a stopped node is Down after
	// about three of them (default 2s).
	Heartbeat time.Duration
	// NoImage skips importing lab/busybox.
	NoImage bool
	// Timeout bounds bring-up (default 4m).
	Timeout time.Duration
}

// Lab is a running Swarm whose nodes are local instances.
type Lab struct {
	// Cloud is the local provider the nodes were launched through.
	Cloud *local.Cloud
	// Cluster, Subnet and StateDir identify the lab.
	Cluster, Subnet, StateDir string
	// Heartbeat is the dispatcher heartbeat the swarm was created with.
	Heartbeat time.Duration
	// Managers and Workers are the instances, first manager first.
	Managers, Workers []providers.Instance

	slot      slot
	closeOnce sync.Once
	mu        sync.Mutex
	swarms    []*docker.Swarm
}

// PollInterval is how often the lab's waits poll.
const PollInterval = 250 * time.Millisecond

// Ticker is the poll ticker for Swarm waits in lab tests.
var Ticker = docker.EveryInterval(PollInterval)

// traces records every lab this process made, for CheckLeaks.
var traces struct {
	sync.Mutex
	labs []trace
}

type trace struct {
	stateDir, bridge string
	ids              []string
}

// Start builds a lab of opts.Managers managers and opts.Workers workers and
// registers its teardown with tb.Cleanup. It skips (or fails in CI) when the
// host cannot run labs.
func Start(tb testing.TB, opts Options) *Lab {
	tb.Helper()
	testenv.NeedLab(tb)
	testenv.NeedCommands(tb, "docker")
	if _, err := os.Stat(BusyboxPath); err != nil && !opts.NoImage {
		testenv.Unavailable(tb, "needs %s (apt-get install busybox-static)", BusyboxPath)
	}
	l, err := New(opts)
	if l != nil {
		tb.Cleanup(func() {
			if err := l.Close(); err != nil {
				tb.Errorf("lab teardown: %v", err)
			}
		})
	}
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	return l
}

// New builds a lab without a testing.TB; the caller must Close it.
// On error the returned lab (if any) still needs Close.
func New(opts Options) (*Lab, error) {
	if opts.Managers < 1 {
		opts.Managers = 1
	}
	if opts.Cluster == "" {
		opts.Cluster = "lab"
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 2 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 4 * time.Minute
	}
	s, err := reserve()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("sslab%d-", s.n))
	if err != nil {
		s.release()
		return nil, fmt.Errorf("failed to create lab state directory: %w", err)
	}
	cloud, err := local.New(CloudConfig(dir, s.subnet()))
	if err != nil {
		os.RemoveAll(dir)
		s.release()
		return nil, err
	}
	l := &Lab{Cloud: cloud, Cluster: opts.Cluster, Subnet: s.subnet(), StateDir: dir, Heartbeat: opts.Heartbeat, slot: s}
	track(dir, cloud.BridgeName(opts.Cluster))

	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	return l, l.up(ctx, opts)
}

func (l *Lab) up(ctx context.Context, opts Options) error {
	first, err := l.Launch(ctx, ManagersGroup, 1, InitScript(l.Heartbeat))
	if err != nil {
		return err
	}
	l.Managers = append(l.Managers, first...)
	leader, err := l.Swarm(first[0].ID)
	if err != nil {
		return err
	}
	if err := l.WaitNodes(ctx, leader, 1); err != nil {
		return err
	}
	tokens, err := leader.JoinTokens(ctx)
	if err != nil {
		return err
	}
	managerAddr := first[0].PrivateIP + ":2377"
	// Managers join one at a time: each raft membership change completes
	// before the next begins.
	for i := 1; i < opts.Managers; i++ {
		in, err := l.Launch(ctx, ManagersGroup, 1, JoinScript(tokens.Manager, managerAddr))
		if err != nil {
			return err
		}
		l.Managers = append(l.Managers, in...)
		if err := l.WaitNodes(ctx, leader, len(l.Managers)); err != nil {
			return err
		}
	}
	// Every manager's own engine says it is in the Swarm: the leader can
	// list a node Ready a moment before its engine's Info does.
	for _, m := range l.Managers {
		sw, err := l.Swarm(m.ID)
		if err != nil {
			return err
		}
		err = Poll(ctx, func() (bool, error) {
			_, err := sw.SelfID(ctx)
			return err == nil, nil
		})
		sw.Close()
		if err != nil {
			return fmt.Errorf("manager %s never reported itself in the Swarm: %w", m.ID, err)
		}
	}
	if opts.Workers > 0 {
		in, err := l.Launch(ctx, "workers/lab", opts.Workers, JoinScript(tokens.Worker, managerAddr))
		if err != nil {
			return err
		}
		l.Workers = append(l.Workers, in...)
		if err := l.WaitNodes(ctx, leader, len(l.Managers)+len(l.Workers)); err != nil {
			return err
		}
	}
	if !opts.NoImage {
		if err := l.ImportImage(ctx, l.All()...); err != nil {
			return err
		}
	}
	return nil
}

// All returns managers then workers.
func (l *Lab) All() []providers.Instance {
	return append(append([]providers.Instance{}, l.Managers...), l.Workers...)
}

// Launch launches count instances of group with user data through the lab's
// cloud and records them for the leak check.
func (l *Lab) Launch(ctx context.Context, group string, count int, userData []byte) ([]providers.Instance, error) {
	in, err := l.Cloud.Launch(ctx, providers.LaunchRequest{
		Cluster: l.Cluster, Group: group, Count: count, Image: "dockerd", InstanceType: "netns",
		Tags: map[string]string{
			providers.TagCluster: l.Cluster, providers.TagGroup: group,
			providers.TagConfig: "lab-v1", providers.TagName: l.Cluster + "-" + strings.ReplaceAll(group, "/", "-"),
		},
		UserData: userData,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to launch lab %s: %w", group, err)
	}
	return in, nil
}

// InitScript is user data that makes a machine the first manager. Its
// output (which would print the worker join command) is discarded.
func InitScript(heartbeat time.Duration) []byte {
	return []byte(fmt.Sprintf(`set -e
docker swarm init --advertise-addr "$SWARMSYNC_PRIVATE_IP" --listen-addr "$SWARMSYNC_PRIVATE_IP:2377" --dispatcher-heartbeat %s >/dev/null
echo "swarm initialised"
`, heartbeat))
}

// JoinScript is user data that joins a machine with token (manager or
// worker) through managerAddr (host:port).
func JoinScript(token, managerAddr string) []byte {
	return []byte(fmt.Sprintf(`set -e
docker swarm join --token '%s' --advertise-addr "$SWARMSYNC_PRIVATE_IP" --listen-addr "$SWARMSYNC_PRIVATE_IP:2377" %s
`, token, managerAddr))
}

// Swarm returns a Swarm client on instance id's engine, closed with the lab.
func (l *Lab) Swarm(id string, opt ...docker.Option) (*docker.Swarm, error) {
	s, err := docker.New(l.Cloud.Endpoint(id), append([]docker.Option{docker.WithTicker(Ticker)}, opt...)...)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.swarms = append(l.swarms, s)
	l.mu.Unlock()
	return s, nil
}

// Leader returns a Swarm client on the current leader.
func (l *Lab) Leader(ctx context.Context) (*docker.Swarm, error) {
	eps, err := l.Cloud.ManagerEndpoints(ctx, l.Cluster)
	if err != nil {
		return nil, err
	}
	s, err := docker.FindLeader(ctx, eps, docker.WithTicker(Ticker))
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.swarms = append(l.swarms, s)
	l.mu.Unlock()
	return s, nil
}

// WaitNodes polls through sw until the swarm has want nodes, all Ready and
// every manager reachable.
func (l *Lab) WaitNodes(ctx context.Context, sw *docker.Swarm, want int) error {
	return Poll(ctx, func() (bool, error) {
		st, err := sw.Observe(ctx)
		if err != nil {
			return false, nil // e.g. the init has not happened yet
		}
		if len(st.Nodes) != want {
			return false, nil
		}
		for _, n := range st.Nodes {
			if n.State != providers.NodeReady || (n.Role == providers.RoleManager && n.Reachability != providers.Reachable) {
				return false, nil
			}
		}
		return true, nil
	})
}

// Poll calls done now and every PollInterval until it is true, fails, or
// ctx ends (the error then says what was awaited last).
func Poll(ctx context.Context, done func() (bool, error)) error {
	ticks, stop := Ticker()
	defer stop()
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab wait: %w", ctx.Err())
		case <-ticks:
		}
	}
}

// ImportImage imports lab/busybox on the given instances in parallel.
func (l *Lab) ImportImage(ctx context.Context, ins ...providers.Instance) error {
	errs := make([]error, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() { errs[i] = importImage(ctx, l.Cloud.Endpoint(in.ID)) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close terminates every instance of the lab, removes its state directory
// and releases its slot. Safe to call more than once.
func (l *Lab) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		for _, s := range l.swarms {
			s.Close()
		}
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var errs []error
		ins, ierr := l.Cloud.Instances(ctx, l.Cluster)
		errs = append(errs, ierr)
		var ids []string
		for _, in := range ins {
			if in.State != providers.StateTerminated {
				ids = append(ids, in.ID)
			}
		}
		if len(ids) > 0 {
			errs = append(errs, l.Cloud.Terminate(ctx, l.Cluster, ids))
		}
		if e := errors.Join(errs...); e == nil {
			errs = append(errs, removeStateDir(l.StateDir))
		}
		errs = append(errs, l.slot.release())
		err = errors.Join(errs...)
	})
	return err
}

// CloudConfig is the local provider configuration labs use: tasks prefer
// images already on the node (no registry is reachable), fast polling.
func CloudConfig(stateDir, subnet string) local.Config {
	return local.Config{
		StateDir: stateDir, Subnet: subnet, PollInterval: 100 * time.Millisecond,
		DockerdEnv: []string{"DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1"},
	}
}

// Reserve gives a test that drives providers/local directly its own subnet
// and state directory; both are released (and checked by CheckLeaks) when
// the test ends. Call Reserve before creating the Cloud so that its cleanup
// runs after the test's own (Terminate) cleanups.
func Reserve(tb testing.TB, cluster string) (subnet, stateDir string) {
	tb.Helper()
	testenv.NeedLab(tb)
	s, err := reserve()
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("sslab%d-", s.n))
	if err != nil {
		s.release()
		tb.Fatalf("lab: %v", err)
	}
	c, err := local.New(CloudConfig(dir, s.subnet()))
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	track(dir, c.BridgeName(cluster))
	tb.Cleanup(func() {
		if err := errors.Join(removeStateDir(dir), s.release()); err != nil {
			tb.Errorf("lab: %v", err)
		}
	})
	return s.subnet(), dir
}

func track(stateDir, bridge string) {
	traces.Lock()
	traces.labs = append(traces.labs, trace{stateDir: stateDir, bridge: bridge})
	traces.Unlock()
}

// removeStateDir remembers the instance ids found in a state directory (for
// the leak check) and removes it.
func removeStateDir(dir string) error {
	entries, _ := os.ReadDir(dir + "/instances")
	traces.Lock()
	for i := range traces.labs {
		if traces.labs[i].stateDir == dir {
			for _, e := range entries {
				traces.labs[i].ids = append(traces.labs[i].ids, e.Name())
			}
		}
	}
	traces.Unlock()
	return os.RemoveAll(dir)
}

// ManagersGroup is the group name of managers (as in the spec).
const ManagersGroup = "managers"
