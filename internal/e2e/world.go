package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/providers/local"
	"github.com/swarmsync/swarmsync/schema"
)

// World is where a scenario runs.
type World struct {
	// Name identifies the world in test output ("local", "aws-emulator").
	Name string
	// Spec is the base cluster spec; scenarios change counts and policies
	// on copies of it.
	Spec schema.Cluster
	// Cloud is the cluster's cloud.
	Cloud providers.Cloud
	// Leader returns an endpoint on the current Swarm leader, or one that
	// observes an inactive swarm when there is none yet.
	Leader func(ctx context.Context) (providers.Swarm, error)
	// Endpoint returns an endpoint on a manager instance's own engine.
	Endpoint func(ctx context.Context, inst providers.Instance) (*docker.Swarm, error)
	// Dialer reaches the first manager after a bootstrap.
	Dialer apply.SwarmDialer
	// ImportImage puts the lab task image (lab/busybox) on the instances.
	ImportImage func(ctx context.Context, insts ...providers.Instance) error
	// Calls, when set, counts the API calls of every pass: Converge moves
	// it from phase to phase, and the world's Docker endpoints count
	// through it. Set it with CountCalls.
	Calls *Calls
}

// CountCalls makes the world count its calls: the cloud is wrapped, and
// Docker endpoints opened from now on count their requests.
func (w *World) CountCalls() *Calls {
	w.Calls = NewCalls()
	w.Cloud = w.Calls.Cloud(w.Cloud)
	return w.Calls
}

// dockerOpts are the options of the world's Docker endpoints.
func (w *World) dockerOpts() []docker.Option {
	if w.Calls == nil {
		return nil
	}
	return []docker.Option{docker.WithRoundTripper(w.Calls.RoundTripper)}
}

// NewLocalWorld returns a world of local machines with its own state
// directory and subnet (10.247.N.0/24), for a cluster of 3 managers and 2
// workers with short waits. Everything it launches is terminated when the
// test ends.
func NewLocalWorld(t testing.TB, name string, subnet int) *World {
	t.Helper()
	testenv.NeedLab(t)
	testenv.NeedCommands(t, "docker")
	dir, err := os.MkdirTemp("/tmp", "sse")
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := local.New(local.Config{StateDir: dir, Subnet: fmt.Sprintf("10.247.%d.0/24", subnet)})
	if err != nil {
		t.Fatal(err)
	}
	spec := LabSpec(name, fmt.Sprintf("10.247.%d.0/24", subnet))
	spec.UserData = lab.FastTemplate(t, "local")
	w := &World{}
	*w = World{
		Name:  "local",
		Spec:  spec,
		Cloud: cloud,
		Leader: func(ctx context.Context) (providers.Swarm, error) {
			eps, err := cloud.ManagerEndpoints(ctx, spec.Name)
			if err != nil {
				return nil, err
			}
			return docker.PickEndpoint(ctx, eps, w.dockerOpts()...)
		},
		Endpoint: func(ctx context.Context, inst providers.Instance) (*docker.Swarm, error) {
			return docker.New(cloud.Endpoint(inst.ID), w.dockerOpts()...)
		},
		ImportImage: (&lab.Lab{Cloud: cloud}).ImportImage,
		Dialer: dialer(func(ctx context.Context, inst providers.Instance) (providers.Swarm, error) {
			sw, err := docker.New(cloud.Endpoint(inst.ID), w.dockerOpts()...)
			if err != nil {
				return nil, err
			}
			return sw, nil
		}),
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "instances", "*", "dockerd.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				if len(b) > 1500 {
					b = b[len(b)-1500:]
				}
				t.Logf("%s:\n%s", l, b)
			}
		}
		ctx := context.Background()
		insts, err := cloud.Instances(ctx, spec.Name)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		var ids []string
		for _, in := range insts {
			if in.State != providers.StateTerminated {
				ids = append(ids, in.ID)
			}
		}
		if len(ids) > 0 {
			if err := cloud.Terminate(ctx, spec.Name, ids); err != nil {
				t.Errorf("cleanup: %v", err)
				return
			}
		}
		// Nothing of the world may outlive it.
		var leaks []string
		if br := cloud.BridgeName(spec.Name); exists("/sys/class/net/" + br) {
			leaks = append(leaks, "bridge "+br)
		}
		for _, in := range insts {
			if ns := local.NetnsName(in.ID); exists("/var/run/netns/" + ns) {
				leaks = append(leaks, "netns "+ns)
			}
			if v := local.VethName(in.ID); exists("/sys/class/net/" + v) {
				leaks = append(leaks, "veth "+v)
			}
		}
		if len(leaks) > 0 {
			t.Errorf("the world leaked: %s", strings.Join(leaks, ", "))
		}
		os.RemoveAll(dir)
	})
	return w
}

// LabSpec is a 3-manager, 2-worker local cluster with waits short enough
// for tests.
func LabSpec(name, subnet string) schema.Cluster {
	d := func(s string) schema.Duration {
		var x schema.Duration
		if err := x.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
			panic(err)
		}
		return x
	}
	return schema.Cluster{
		Name:     name,
		Provider: schema.Provider{Local: &schema.LocalProvider{Subnet: subnet}},
		Managers: schema.Managers{Count: 3, Availability: "drain"},
		Workers:  map[string]schema.WorkerGroup{"general": {Count: 2, Availability: "active", Labels: map[string]string{"tier": "demo"}}},
		Update: schema.Update{
			Parallelism: 1, MaxSurge: 1, FailureAction: "pause",
			JoinTimeout: d("2m"), DrainTimeout: d("1m"),
		},
		Schedule:   schema.Schedule{Reconcile: "@every 30s"},
		Safety:     schema.Safety{MaxRemovalsPerApply: 5},
		JoinTokens: schema.JoinTokens{RotateAfterJoin: true},
	}
}

type dialer func(ctx context.Context, inst providers.Instance) (providers.Swarm, error)

func (d dialer) Dial(ctx context.Context, inst providers.Instance) (providers.Swarm, error) {
	return d(ctx, inst)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
