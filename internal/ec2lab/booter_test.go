package ec2lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/aws"
	"github.com/swarmsync/swarmsync/providers/docker"
)

// env is the real AWS provider over HTTP to an emulator whose instances
// boot lab machines.
type env struct {
	sim    *ec2sim.Server
	booter *Booter
	cloud  *aws.Cloud
}

func newEnv(t *testing.T, cluster string) env {
	t.Helper()
	testenv.NeedCommands(t, "docker", "unshare", "mount")
	subnet, dir := lab.Reserve(t, cluster)
	b, err := New(Options{StateDir: dir, Subnet: subnet, Cluster: cluster})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ec2sim.New(ec2sim.Options{Booter: b})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sim.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close booter: %v", err)
		}
	})
	cloud, err := aws.New(context.Background(), aws.Options{
		Region: "us-east-1", Endpoint: sim.URL(), HTTPClient: &http.Client{Timeout: 30 * time.Second},
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEC2LABTEST000000", "ec2lab/test/secret/key/000000000000000", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return env{sim: sim, booter: b, cloud: cloud}
}

func (e env) launch(ctx context.Context, t *testing.T, cluster string, userData []byte) providers.Instance {
	t.Helper()
	ins, err := e.cloud.Launch(ctx, providers.LaunchRequest{
		Cluster: cluster, Group: "managers", Count: 1, Image: "ami-0123456789abcdef0", InstanceType: "t3.small",
		Subnets:  []string{ec2sim.DefaultSubnets[1].ID},
		Tags:     map[string]string{providers.TagConfig: "c1", providers.TagName: cluster + "-managers"},
		UserData: userData, IdempotencyToken: cluster + "-launch-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return ins[0]
}

func hostDaemonJSON(t *testing.T) [32]byte {
	t.Helper()
	b, err := os.ReadFile("/etc/docker/daemon.json")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestBootRunsAWSTemplate launches one instance through providers/aws with
// the default aws user data for the first manager: the machine's engine
// ends up a swarm manager whose engine label is the EC2 instance id and
// whose address is the instance's private IP; the label was written to the
// machine's own /etc/docker, the host's is untouched. Terminating the
// instance stops the machine.
func TestBootRunsAWSTemplate(t *testing.T) {
	const cluster = "ec2labboot"
	before := hostDaemonJSON(t)
	e := newEnv(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ud, err := apply.RenderUserData("", apply.UserDataInput{Cluster: cluster, Group: "managers", Role: providers.RoleManager, Init: true, Provider: "aws"})
	if err != nil {
		t.Fatal(err)
	}
	in := e.launch(ctx, t, cluster, ud)
	ep, err := e.booter.WaitEndpoint(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := docker.New(ep)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	var st providers.SwarmState
	if err := lab.Poll(ctx, func() (bool, error) {
		st, err = sw.Observe(ctx)
		return err == nil && st.Active && len(st.Nodes) == 1, nil
	}); err != nil {
		t.Fatalf("the user data did not initialise a swarm: %v (last state %+v)", err, st)
	}
	insts, err := e.cloud.Instances(ctx, cluster)
	if err != nil || len(insts) != 1 {
		t.Fatalf("instances %v, err %v", insts, err)
	}
	got := insts[0]
	if got.State != providers.StateRunning || got.Zone != ec2sim.DefaultSubnets[1].Zone {
		t.Errorf("instance %+v: want running in %s", got, ec2sim.DefaultSubnets[1].Zone)
	}
	n := st.Nodes[0]
	if n.InstanceID() != in.ID {
		t.Errorf("engine label %s=%q, want the EC2 id %s", providers.EngineLabelInstance, n.InstanceID(), in.ID)
	}
	if n.Addr != got.PrivateIP || n.ManagerAddr != got.PrivateIP+":2377" {
		t.Errorf("node address %s / manager address %s, want the instance's private IP %s", n.Addr, n.ManagerAddr, got.PrivateIP)
	}
	lid, _ := e.booter.LocalID(in.ID)
	m, _ := e.booter.Local().Instances(ctx, cluster)
	if len(m) != 1 || m[0].ID != lid || m[0].PrivateIP != got.PrivateIP {
		t.Errorf("lab machines %+v, want one (%s) at %s", m, lid, got.PrivateIP)
	}
	conf, err := os.ReadFile(filepath.Join(e.booter.dir, "m", in.ID, "etc-docker", "daemon.json"))
	if err != nil || !bytes.Contains(conf, []byte(`"swarmsync.instance=`+in.ID+`"`)) {
		t.Errorf("the machine's /etc/docker/daemon.json is %q (%v), want the engine label", conf, err)
	}
	if hostDaemonJSON(t) != before {
		t.Error("the host's /etc/docker/daemon.json changed")
	}

	if err := e.cloud.Terminate(ctx, cluster, []string{in.ID}); err != nil {
		t.Fatal(err)
	}
	e.sim.WaitBooter()
	if _, ok := e.booter.LocalID(in.ID); ok {
		t.Error("the machine is still known after the instance terminated")
	}
	m, _ = e.booter.Local().Instances(ctx, cluster)
	if len(m) != 1 || m[0].State != providers.StateTerminated {
		t.Errorf("lab machines after terminate: %+v, want the one terminated", m)
	}
}

// TestBootRefusesRestartWithoutLabel: user data that restarts docker
// without writing the engine label to /etc/docker/daemon.json fails at the
// restart, so the swarm is never initialised.
func TestBootRefusesRestartWithoutLabel(t *testing.T) {
	const cluster = "ec2labnolabel"
	e := newEnv(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ud := []byte("#!/bin/sh\nset -e\nsystemctl restart docker\ndocker swarm init --advertise-addr 127.0.0.1\n")
	in := e.launch(ctx, t, cluster, ud)
	ep, err := e.booter.WaitEndpoint(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	lid, _ := e.booter.LocalID(in.ID)
	log := filepath.Join(e.booter.Local().StateDir(), "instances", lid, "user-data.log")
	var out []byte
	if err := lab.Poll(ctx, func() (bool, error) {
		out, _ = os.ReadFile(log)
		return bytes.Contains(out, []byte("is missing or empty")), nil
	}); err != nil {
		t.Fatalf("the restart was not refused: user-data.log %q: %v", out, err)
	}
	sw, err := docker.New(ep)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	st, err := sw.Observe(ctx)
	if err != nil || st.Active {
		t.Errorf("swarm state %+v (err %v), want inactive", st, err)
	}
}
