package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/providers/local"
)

func TestMain(m *testing.M) { os.Exit(lab.RunTests(m)) }

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  local.Config
		want string
	}{
		{"not a CIDR", local.Config{StateDir: "/tmp/x", Subnet: "10.231.0.0"}, "invalid local subnet"},
		{"public range", local.Config{StateDir: "/tmp/x", Subnet: "8.8.8.0/24"}, "private range"},
		{"too small", local.Config{StateDir: "/tmp/x", Subnet: "10.231.0.0/30"}, "prefix length"},
		{"socket path too long", local.Config{StateDir: "/tmp/" + strings.Repeat("d", 80)}, "too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := local.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
			}
		})
	}
}

const secretMarker = "not-a-real-secret-7f3a"

// userData prints what the machine sees, and carries a marker that must
// never be found on disk.
var userData = []byte(`# ` + secretMarker + `
echo "id=$SWARMSYNC_INSTANCE_ID ip=$SWARMSYNC_PRIVATE_IP host=$(hostname)"
docker info --format 'labels={{join .Labels ","}} name={{.Name}}'
ip -4 -o addr show dev eth0
echo user-data-done
`)

func poll(ctx context.Context, done func() bool) error {
	return lab.Poll(ctx, func() (bool, error) { return done(), nil })
}

// TestCloud drives one cluster's lifecycle through the real provider.
func TestCloud(t *testing.T) {
	subnet, dir := lab.Reserve(t, "alpha")
	cfg := lab.CloudConfig(dir, subnet)
	c, err := local.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	req := providers.LaunchRequest{
		Cluster: "alpha", Group: "managers", Count: 2, Image: "dockerd", InstanceType: "netns",
		Tags:             map[string]string{providers.TagConfig: "cfg-1", providers.TagName: "alpha-manager"},
		UserData:         userData,
		IdempotencyToken: "plan-1/step-3",
	}
	ins, err := c.Launch(ctx, req)
	t.Cleanup(func() {
		// Safety net when a subtest fails half-way.
		all, _ := c.Instances(context.Background(), "alpha")
		var ids []string
		for _, in := range all {
			if in.State != providers.StateTerminated {
				ids = append(ids, in.ID)
			}
		}
		if len(ids) > 0 {
			if err := c.Terminate(context.Background(), "alpha", ids); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{ins[0].ID, ins[1].ID}

	t.Run("launch returns running instances with tags", func(t *testing.T) {
		idPat := regexp.MustCompile(`^l-[0-9a-f]{12}$`)
		prefix := strings.TrimSuffix(subnet, "0/24")
		ips := map[string]bool{}
		for _, in := range ins {
			if !idPat.MatchString(in.ID) {
				t.Errorf("instance id %q does not look like l-<12 hex>", in.ID)
			}
			ips[in.PrivateIP] = true
			want := providers.Instance{
				ID: in.ID, Cluster: "alpha", Group: "managers", Config: "cfg-1", State: providers.StateRunning,
				PrivateIP: in.PrivateIP, Zone: local.Zone, LaunchedAt: in.LaunchedAt,
				Tags: map[string]string{
					providers.TagCluster: "alpha", providers.TagGroup: "managers",
					providers.TagConfig: "cfg-1", providers.TagName: "alpha-manager",
				},
			}
			if diff := cmp.Diff(want, in); diff != "" {
				t.Errorf("instance (-want +got):\n%s", diff)
			}
			if in.LaunchedAt.IsZero() {
				t.Errorf("instance %s has no launch time", in.ID)
			}
		}
		if diff := cmp.Diff(map[string]bool{prefix + "2": true, prefix + "3": true}, ips); diff != "" {
			t.Errorf("private IPs (-want +got):\n%s", diff)
		}
	})

	t.Run("user data runs inside the machine", func(t *testing.T) {
		for _, in := range ins {
			logPath := filepath.Join(dir, "instances", in.ID, "user-data.log")
			var out []byte
			if err := poll(ctx, func() bool {
				out, _ = os.ReadFile(logPath)
				return bytes.Contains(out, []byte("user-data-done"))
			}); err != nil {
				t.Fatalf("user data of %s never finished: %v; log: %s", in.ID, err, out)
			}
			for _, want := range []string{
				fmt.Sprintf("id=%s ip=%s host=%s", in.ID, in.PrivateIP, in.ID),
				fmt.Sprintf("labels=%s=%s name=%s", providers.EngineLabelInstance, in.ID, in.ID),
				"inet " + in.PrivateIP + "/24",
			} {
				if !strings.Contains(string(out), want) {
					t.Errorf("user data log of %s lacks %q:\n%s", in.ID, want, out)
				}
			}
			if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("user data log mode = %v (%v), want 0600", fi.Mode().Perm(), err)
			}
		}
		// The script itself is nowhere on disk.
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secretMarker)) {
				t.Errorf("user data found on disk in %s", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("same token and request returns the same machines", func(t *testing.T) {
		again, err := c.Launch(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ins, again); diff != "" {
			t.Errorf("relaunch with the same token (-first +again):\n%s", diff)
		}
		changed := req
		changed.Count = 3
		if _, err := c.Launch(ctx, changed); !errors.Is(err, local.ErrIdempotentParameterMismatch) {
			t.Errorf("same token, different count = %v, want ErrIdempotentParameterMismatch", err)
		}
		all, err := c.Instances(ctx, "alpha")
		if err != nil || len(all) != 2 {
			t.Errorf("instances after relaunches = %d (%v), want 2", len(all), err)
		}
	})

	t.Run("state survives a new provider on the same directory", func(t *testing.T) {
		c2, err := local.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c2.Instances(ctx, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ins, got); diff != "" {
			t.Errorf("instances seen by a new provider (-launched +seen):\n%s", diff)
		}
		eps, err := c2.ManagerEndpoints(ctx, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{c.Endpoint(ids[0]), c.Endpoint(ids[1])}
		if diff := cmp.Diff(want, eps); diff != "" {
			t.Errorf("manager endpoints (-want +got):\n%s", diff)
		}
		for _, ep := range eps {
			sw, err := docker.New(ep)
			if err != nil {
				t.Fatal(err)
			}
			st, err := sw.Observe(ctx)
			sw.Close()
			if err != nil || st.Active {
				t.Errorf("engine at %s: Observe = %+v, %v; want an answering engine outside any swarm", ep, st, err)
			}
		}
	})

	t.Run("terminate refuses instances of other clusters", func(t *testing.T) {
		if err := c.Terminate(ctx, "beta", ids); !errors.Is(err, local.ErrNotOwned) {
			t.Errorf("Terminate(beta, alpha's ids) = %v, want ErrNotOwned", err)
		}
		if err := c.Terminate(ctx, "alpha", []string{ids[0], "l-000000000000"}); !errors.Is(err, local.ErrNotOwned) {
			t.Errorf("Terminate with an unknown id = %v, want ErrNotOwned", err)
		}
		all, _ := c.Instances(ctx, "alpha")
		for _, in := range all {
			if in.State != providers.StateRunning {
				t.Errorf("refused Terminate changed %s to %s", in.ID, in.State)
			}
		}
		if others, _ := c.Instances(ctx, "beta"); len(others) != 0 {
			t.Errorf("cluster beta lists %d instances, want none", len(others))
		}
	})

	t.Run("stop and start", func(t *testing.T) {
		if err := c.Stop(ctx, "alpha", ids[1]); err != nil {
			t.Fatal(err)
		}
		if st := stateOf(t, c, ids[1]); st != providers.StateStopped {
			t.Errorf("after Stop state = %s, want stopped", st)
		}
		if err := c.Start(ctx, "alpha", ids[1]); err != nil {
			t.Fatal(err)
		}
		if st := stateOf(t, c, ids[1]); st != providers.StateRunning {
			t.Errorf("after Start state = %s, want running", st)
		}
	})

	t.Run("forget refuses a cluster with live instances", func(t *testing.T) {
		if _, err := c.Forget(ctx, "alpha"); err == nil || !strings.Contains(err.Error(), "not terminated") {
			t.Errorf("Forget with live instances: %v, want a refusal", err)
		}
		if st := stateOf(t, c, ids[0]); st != providers.StateRunning {
			t.Errorf("%s is %s after a refused Forget", ids[0], st)
		}
	})

	t.Run("terminate removes machines and, with the last, the bridge", func(t *testing.T) {
		if err := c.Terminate(ctx, "alpha", ids[:1]); err != nil {
			t.Fatal(err)
		}
		bridge := c.BridgeName("alpha")
		if !exists("/sys/class/net/" + bridge) {
			t.Errorf("bridge %s went away while an instance is left", bridge)
		}
		// The machines are kept off every network but their bridge.
		isolation := []string{"-w", "-C", "FORWARD", "-i", bridge, "!", "-o", bridge, "-j", "DROP"}
		if err := exec.Command("iptables", isolation...).Run(); err != nil {
			t.Errorf("no FORWARD rule keeps bridge %s's machines off other networks: %v", bridge, err)
		}
		if err := c.Terminate(ctx, "alpha", ids); err != nil { // ids[0] again: a no-op
			t.Fatal(err)
		}
		for _, id := range ids {
			if st := stateOf(t, c, id); st != providers.StateTerminated {
				t.Errorf("%s is %s, want terminated", id, st)
			}
			for _, p := range []string{"/var/run/netns/" + local.NetnsName(id), "/sys/class/net/" + local.VethName(id), filepath.Join(dir, "instances", id, "data")} {
				if exists(p) {
					t.Errorf("%s still exists after Terminate", p)
				}
			}
		}
		if exists("/sys/class/net/" + bridge) {
			t.Errorf("bridge %s left after the last instance went", bridge)
		}
		if exec.Command("iptables", isolation...).Run() == nil {
			t.Errorf("the isolation rule of bridge %s is left after the last instance went", bridge)
		}
	})

	t.Run("forget drops a terminated cluster's records", func(t *testing.T) {
		all, err := c.Instances(ctx, "alpha")
		if err != nil || len(all) == 0 {
			t.Fatalf("terminated instances listed: %d (%v), want some", len(all), err)
		}
		n, err := c.Forget(ctx, "alpha")
		if err != nil || n != len(all) {
			t.Fatalf("Forget = %d, %v; want %d", n, err, len(all))
		}
		if left, err := c.Instances(ctx, "alpha"); err != nil || len(left) != 0 {
			t.Errorf("after Forget %d instances listed (%v), want none", len(left), err)
		}
		for _, in := range all {
			if exists(filepath.Join(dir, "instances", in.ID)) {
				t.Errorf("the record of %s is left", in.ID)
			}
		}
		if exists(filepath.Join(dir, "clusters", "alpha", "launches")) {
			t.Error("the launch records of alpha are left")
		}
		if n, err := c.Forget(ctx, "alpha"); n != 0 || err != nil {
			t.Errorf("Forget again = %d, %v; want 0, nil", n, err)
		}
	})
}

func stateOf(t *testing.T, c *local.Cloud, id string) providers.InstanceState {
	t.Helper()
	all, err := c.Instances(context.Background(), "alpha")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		if in.ID == id {
			return in.State
		}
	}
	t.Fatalf("instance %s not listed", id)
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestSubnetInUse: a second cluster on a subnet the host already routes
// to another bridge is refused before anything is created (its machines
// would run unreachable from the host), naming the interface.
func TestSubnetInUse(t *testing.T) {
	subnet, dir := lab.Reserve(t, "first")
	first, err := local.New(lab.CloudConfig(dir, subnet))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	req := func(cluster string) providers.LaunchRequest {
		return providers.LaunchRequest{Cluster: cluster, Group: "managers", Count: 1, Image: "dockerd", InstanceType: "netns",
			Tags: map[string]string{providers.TagConfig: "cfg-1"}, UserData: userData, IdempotencyToken: cluster + "/1"}
	}
	ins, err := first.Launch(ctx, req("first"))
	if len(ins) > 0 {
		t.Cleanup(func() {
			if err := first.Terminate(context.Background(), "first", []string{ins[0].ID}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	second, err := local.New(lab.CloudConfig(t.TempDir(), subnet))
	if err != nil {
		t.Fatal(err)
	}
	_, err = second.Launch(ctx, req("second"))
	if err == nil || !strings.Contains(err.Error(), "subnet "+subnet+" is already used by network interface "+first.BridgeName("first")) {
		t.Fatalf("launching a second cluster on %s: %v, want a refusal naming %s", subnet, err, first.BridgeName("first"))
	}
	if all, err := second.Instances(ctx, "second"); err != nil || len(all) != 0 {
		t.Errorf("the refused cluster has instances %v (%v), want none", all, err)
	}
	if name := second.BridgeName("second"); exec.Command("ip", "link", "show", name).Run() == nil {
		t.Errorf("the refused cluster's bridge %s was created", name)
	}
}
