package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/swarmsync/swarmsync/internal/ec2lab"
	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/aws"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/schema"
)

// AWSWorld is the AWS path of a World: the EC2 emulator and the booter
// behind it, for tests that inject faults or count calls.
type AWSWorld struct {
	*World
	// Sim is the EC2 emulator the Cloud talks to over HTTP.
	Sim *ec2sim.Server
	// Booter boots the emulator's instances as lab machines.
	Booter *ec2lab.Booter
}

// awsRegion, awsImage: what the AWS world's spec names; awsAccessKey,
// awsSecretKey: the static test credentials its clients sign with.
const (
	awsRegion    = "us-east-1"
	awsImage     = "ami-0e2c8caa4b6378d8c"
	awsAccessKey = "AKIAE2ETESTEXAMPLE00"
	awsSecretKey = "e2e/secret/key/for/the/ec2/emulator0000"
)

// NewAWSWorld returns a world on the AWS path: the real providers/aws Cloud
// (aws-sdk-go-v2 with static test credentials) over HTTP to an EC2 emulator
// on loopback, whose every launched instance boots a real lab machine
// (dockerd in a network namespace, address in 10.247.N.0/24 = the
// instance's private IP, engine label = the instance id) that runs the
// instance's user data: the default aws template. The spec is LabSpec's
// cluster with an aws provider, an AMI, instance types and three subnets
// (one per zone). Everything is terminated when the test ends.
func NewAWSWorld(t *testing.T, name string, subnet int) *World {
	t.Helper()
	return NewAWSWorldDetail(t, name, subnet).World
}

// NewAWSWorldDetail is NewAWSWorld, also returning the emulator and booter.
func NewAWSWorldDetail(t *testing.T, name string, subnet int) *AWSWorld {
	t.Helper()
	testenv.NeedLab(t)
	testenv.NeedCommands(t, "docker", "unshare", "mount")
	cidr := fmt.Sprintf("10.247.%d.0/24", subnet)
	dir, err := os.MkdirTemp("/tmp", "ssa")
	if err != nil {
		t.Fatal(err)
	}
	booter, err := ec2lab.New(ec2lab.Options{
		StateDir: dir, Subnet: cidr, Cluster: name,
		DockerdEnv: []string{"DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1"},
	})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	// Three zones. The emulator's own address plan is replaced by the
	// machines' addresses once they boot; its subnets only need to exist.
	var subnets []ec2sim.Subnet
	var subnetIDs []string
	for i, z := range []string{"a", "b", "c"} {
		id := fmt.Sprintf("subnet-0e2e%013d", subnet*10+i)
		subnets = append(subnets, ec2sim.Subnet{ID: id, Zone: awsRegion + z, CIDR: fmt.Sprintf("10.%d.%d.0/24", 200+i, subnet)})
		subnetIDs = append(subnetIDs, id)
	}
	sim, err := ec2sim.New(ec2sim.Options{Booter: booter, Subnets: subnets, RunInstancesRate: &ec2sim.RunInstancesBudget})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range booter.Logs() {
				b, _ := os.ReadFile(l)
				if len(b) > 1500 {
					b = b[len(b)-1500:]
				}
				t.Logf("%s:\n%s", l, b)
			}
		}
		// The emulator first (no boot under way), then every machine.
		if err := sim.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := booter.Close(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		os.RemoveAll(dir)
	})
	cloud, err := aws.New(context.Background(), aws.Options{
		Region: awsRegion, Endpoint: sim.URL(),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second},
		Credentials: credentials.NewStaticCredentialsProvider(awsAccessKey, awsSecretKey, ""),
		MaxBackoff:  2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}

	spec := LabSpec(name, cidr)
	spec.Provider = schema.Provider{AWS: &schema.AWSProvider{Region: awsRegion}}
	spec.Managers.Instance = schema.Instance{Type: "t3.small", Image: awsImage, Subnets: subnetIDs}
	g := spec.Workers["general"]
	g.Instance = schema.Instance{Type: "t3.medium", Image: awsImage, Subnets: subnetIDs}
	spec.Workers = map[string]schema.WorkerGroup{"general": g}
	spec.UserData = lab.FastTemplate(t, "aws")

	w := &World{}
	endpoint := func(inst providers.Instance) (*docker.Swarm, error) {
		ep, ok := booter.Endpoint(inst.ID)
		if !ok {
			return nil, fmt.Errorf("instance %s has no lab machine (state %s)", inst.ID, inst.State)
		}
		return docker.New(ep, w.dockerOpts()...)
	}
	*w = World{
		Name:  "aws-emulator",
		Spec:  spec,
		Cloud: cloud,
		Leader: func(ctx context.Context) (providers.Swarm, error) {
			insts, err := cloud.Instances(ctx, spec.Name)
			if err != nil {
				return nil, err
			}
			var eps []string
			for _, in := range insts {
				if in.Group != schema.ManagersGroup || in.State != providers.StateRunning {
					continue
				}
				if ep, ok := booter.Endpoint(in.ID); ok {
					eps = append(eps, ep)
				}
			}
			return docker.PickEndpoint(ctx, eps, w.dockerOpts()...)
		},
		Endpoint: func(ctx context.Context, inst providers.Instance) (*docker.Swarm, error) {
			return endpoint(inst)
		},
		ImportImage: func(ctx context.Context, insts ...providers.Instance) error {
			machines := make([]providers.Instance, 0, len(insts))
			for _, in := range insts {
				lid, ok := booter.LocalID(in.ID)
				if !ok {
					return fmt.Errorf("failed to import the lab image: instance %s has no lab machine", in.ID)
				}
				machines = append(machines, providers.Instance{ID: lid})
			}
			return (&lab.Lab{Cloud: booter.Local()}).ImportImage(ctx, machines...)
		},
		// Right after a launch the instance is pending: the dialer waits
		// for its machine, as a real one would wait for the address to
		// answer.
		Dialer: dialer(func(ctx context.Context, inst providers.Instance) (providers.Swarm, error) {
			ep, err := booter.WaitEndpoint(ctx, inst.ID)
			if err != nil {
				return nil, err
			}
			sw, err := docker.New(ep, w.dockerOpts()...)
			if err != nil {
				return nil, err
			}
			return sw, nil
		}),
	}
	return &AWSWorld{World: w, Sim: sim, Booter: booter}
}
