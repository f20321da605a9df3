package lab_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/local"
)

func TestMain(m *testing.M) { os.Exit(lab.RunTests(m)) }

// TestLabUp brings up a two-node lab and checks both nodes are Ready and
// linked to their instances by engine label.
func TestLabUp(t *testing.T) {
	l := lab.Start(t, lab.Options{Managers: 1, Workers: 1})
	ctx := context.Background()
	sw, err := l.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sw.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]providers.Role{l.Managers[0].ID: providers.RoleManager, l.Workers[0].ID: providers.RoleWorker}
	got := map[string]providers.Role{}
	for _, n := range st.Nodes {
		if n.State != providers.NodeReady {
			t.Errorf("node %s is %s, want ready", n.ID, n.State)
		}
		got[n.InstanceID()] = n.Role
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("nodes by instance = %v, want %v", got, want)
	}
}

// TestCheckLeaksSeesLiveMachines shows the leak check can fail: while a
// machine runs, its namespace, veth, bridge, rule, processes and directory
// are all reported; after Terminate and cleanup, none is.
func TestCheckLeaksSeesLiveMachines(t *testing.T) {
	subnet, dir := lab.Reserve(t, "leaky")
	c, err := local.New(lab.CloudConfig(dir, subnet))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ins, err := c.Launch(ctx, providers.LaunchRequest{Cluster: "leaky", Group: "managers", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = lab.CheckLeaks()
	for _, want := range []string{"bridge " + c.BridgeName("leaky"), "FORWARD rule", "netns " + local.NetnsName(ins[0].ID), "veth " + local.VethName(ins[0].ID), "process ", "state directory " + dir} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckLeaks with a live machine = %v; want it to report %q", err, want)
		}
	}
	if err := c.Terminate(ctx, "leaky", []string{ins[0].ID}); err != nil {
		t.Fatal(err)
	}
	err = lab.CheckLeaks()
	if err == nil || strings.Contains(err.Error(), "netns") || strings.Contains(err.Error(), "bridge") || !strings.Contains(err.Error(), "state directory") {
		t.Errorf("CheckLeaks after Terminate = %v; want only the state directory (removed at cleanup)", err)
	}
}
