package lab_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/providers"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := lab.CheckLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

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
