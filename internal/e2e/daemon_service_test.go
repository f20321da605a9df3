package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/internal/daemontest"
	"github.com/swarmsync/swarmsync/internal/ec2sim"
	"github.com/swarmsync/swarmsync/internal/gitserve"
	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
	"github.com/swarmsync/swarmsync/schema"
	"github.com/swarmsync/swarmsync/sync/webhook"
)

// serviceSubnet is the lab subnet of TestDaemonServiceOnAWSPath
// (10.247.27.0/24; the other AWS scenarios use 21-26).
const serviceSubnet = 27

// serviceName is the stack's service: stack swarmsync, service swarmsync.
const serviceName = "swarmsync_swarmsync"

// serviceDaemon is the task of the global service on one manager.
type serviceDaemon struct {
	inst     providers.Instance
	endpoint string // the manager's engine, from the host
	addr     string // privateIP:9090, where the service publishes its port
}

func (d *serviceDaemon) status() (apply.LoopStatus, error) { return daemontest.Status(d.addr) }

// mustStatus is status, failing the test when the daemon does not answer.
func (d *serviceDaemon) mustStatus(t *testing.T) apply.LoopStatus {
	t.Helper()
	st, err := d.status()
	if err != nil {
		t.Fatalf("daemon on %s: %v", d.inst.ID, err)
	}
	return st
}

// TestDaemonServiceOnAWSPath runs the reconciler as the product deploys it:
// deploy/stack.yml's global service, one task per manager, on 3 managers
// of a cluster bootstrapped on the AWS path (providers/aws over HTTP to the
// EC2 emulator, whose instances boot lab machines running the aws user
// data). The image is built in the test with deploy/build.sh on one
// manager's engine and copied into the others' with docker save | docker
// load (no registry). The spec is on a real Git server (git daemon); the
// webhook secret and the Git token are Docker secrets.
//
// A push raising the workers 1 → 2 and a signed GitHub webhook to a
// FOLLOWER's task: the leader's task applies it (the emulator launches one
// instance, its machine joins). A bad signature to a follower: 401,
// counted, no pass. Then a push raising the workers 2 → 3 with no
// webhook: the schedule (4 s, from the previous commit) picks it up.
//
// What the lab changes, in a second compose file over deploy/stack.yml:
// the tasks reach the emulator through AWS_ENDPOINT_URL with static test
// credentials, and the socket mount's source is the manager's own engine
// socket (lab machines share the host's file system: /var/run/docker.sock
// there is the host's engine). The emulator and git daemon listen on the
// host's address on the lab bridge, which the machines route through.
func TestDaemonServiceOnAWSPath(t *testing.T) {
	testenv.NeedCommands(t, "docker", "go", "git")
	aw := NewAWSWorldDetail(t, "awsdaemon", serviceSubnet)
	w := aw.World
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	// The spec as the repository holds it: the world's (3 active managers,
	// 1 worker here), an hourly schedule (no scheduled pass during the
	// test: after the first, every pass is the webhook's) and a generous
	// joinTimeout (machines boot slowly on a loaded host).
	spec := withCounts(w.Spec, 3, 1)
	spec.Schedule.Reconcile = "@every 1h"
	// The service's tasks run on the managers: Swarm schedules no task,
	// a global service's included, on a drained node (the default).
	spec.Managers.Availability = "active"
	if err := spec.Update.JoinTimeout.UnmarshalJSON([]byte(`"5m"`)); err != nil {
		t.Fatal(err)
	}
	repo := gitserve.NewRepo(t, filepath.Join(t.TempDir(), "specs"))
	c1 := repo.Commit(map[string]string{"cluster.yaml": specFile(t, spec)}, "3 managers, 1 worker")

	rec := &Recorder{}
	start := time.Now()
	MustConverge(ctx, t, w, spec, rec)
	t.Logf("FIGURE aws bootstrap 3 managers + 1 worker: %s", time.Since(start).Round(10*time.Millisecond))

	s := deployService(ctx, t, aw, serviceSubnet, spec, repo, c1)
	daemons, leader, followers, bare, secret := s.daemons, s.leader, s.followers, s.bare, s.secret

	// Push: workers 1 → 2 and a 4 s schedule (read by the pass this
	// commit starts); the signed webhook goes to a follower.
	up := withCounts(spec, 3, 2)
	up.Schedule.Reconcile = "@every 4s"
	c2 := repo.Commit(map[string]string{"cluster.yaml": specFile(t, up)}, "2 workers")
	repo.Push(bare)
	body := []byte(`{"ref":"refs/heads/main","after":"` + c2 + `"}`)
	before := leader.mustStatus(t)
	sent := time.Now()
	if code := daemontest.PostWebhook(t, followers[0].addr, body, webhook.HeaderGitHubSignature, webhook.SignGitHub(secret, body), webhook.HeaderGitHubDelivery, "svc-1"); code != http.StatusAccepted {
		t.Fatalf("webhook to a follower answered %d, want 202", code)
	}
	var st apply.LoopStatus
	var err error
	if err := lab.Poll(ctx, func() (bool, error) {
		st, err = leader.status()
		return err == nil && st.LastTrigger == apply.TriggerWebhook && st.LastStart.After(before.LastStart), nil
	}); err != nil {
		t.Fatalf("the leader's task started no webhook pass: %v; %+v", err, st)
	}
	t.Logf("FIGURE webhook to a follower -> leader's pass started: %s", st.LastStart.Sub(sent).Round(time.Millisecond))
	var ready int
	if err := lab.Poll(ctx, func() (bool, error) {
		st, err = leader.status()
		if err != nil || st.LastCommit != c2 || st.LastResult != apply.ResultOK || st.LastEnd.Before(st.LastStart) {
			return false, nil
		}
		ready, err = readyWorkers(ctx, leader)
		return err == nil && ready == 2, nil
	}); err != nil {
		t.Fatalf("commit %.8s: %d Ready workers, want 2; leader %+v", c2, ready, st)
	}
	t.Logf("FIGURE webhook sent → 2 Ready workers, the leader's pass ok: %s", time.Since(sent).Round(10*time.Millisecond))
	CheckShape(ctx, t, w, up)
	// One launch in the emulator: 3 + 1 bootstrapped, 1 by the daemon.
	if n := len(aw.Sim.Instances()); n != 5 {
		t.Errorf("the emulator holds %d instances, want 5 (4 bootstrapped + 1 launched by the leader's task)", n)
	}
	for _, in := range aw.Sim.Instances() {
		if in.State != ec2sim.StateRunning {
			t.Errorf("instance %s is %s", in.ID, in.State)
		}
	}
	if m := daemontest.Metrics(t, followers[0].addr); !strings.Contains(m, `swarmsync_webhook_deliveries_total{cluster="`+spec.Name+`",result="forwarded"} 1`) {
		t.Errorf("the follower did not count the forwarded delivery:\n%s", daemontest.Lines(m, "webhook_deliveries"))
	}

	// A bad signature to the other follower: refused, counted, no pass
	// (the leader's scheduled passes go on; none is the webhook's).
	badAt := time.Now()
	bad := []byte(`{"ref":"refs/heads/main","after":"` + c2 + `"}`)
	if code := daemontest.PostWebhook(t, followers[1].addr, bad, webhook.HeaderGitHubSignature, webhook.SignGitHub([]byte("a guess"), bad), webhook.HeaderGitHubDelivery, "svc-2"); code != http.StatusUnauthorized {
		t.Errorf("a bad signature answered %d, want 401", code)
	}
	if m := daemontest.Metrics(t, followers[1].addr); !strings.Contains(m, `swarmsync_webhook_deliveries_total{cluster="`+spec.Name+`",result="bad-signature"} 1`) {
		t.Errorf("the bad delivery is not counted:\n%s", daemontest.Lines(m, "webhook_deliveries"))
	}
	for _, d := range daemons {
		if st := d.mustStatus(t); st.LastTrigger == apply.TriggerWebhook && st.LastStart.After(badAt) {
			t.Errorf("the task on %s started a webhook pass after the bad delivery: %+v", d.inst.ID, st)
		}
	}
	CheckShape(ctx, t, w, up)

	// Without a webhook: workers 2 → 3, picked up by the schedule.
	up3 := withCounts(up, 3, 3)
	c3 := repo.Commit(map[string]string{"cluster.yaml": specFile(t, up3)}, "3 workers")
	repo.Push(bare)
	pushed := time.Now()
	if err := lab.Poll(ctx, func() (bool, error) {
		st, err = leader.status()
		if err != nil || st.LastCommit != c3 || st.LastResult != apply.ResultOK || st.LastEnd.Before(st.LastStart) {
			return false, nil
		}
		ready, err = readyWorkers(ctx, leader)
		return err == nil && ready == 3, nil
	}); err != nil {
		t.Fatalf("commit %.8s (no webhook): %d Ready workers, want 3; leader %+v\n%s", c3, ready, st, serviceLogs(daemons))
	}
	if st.LastTrigger != apply.TriggerSchedule {
		t.Errorf("the pass that applied %.8s was started by %q, want the schedule", c3, st.LastTrigger)
	}
	t.Logf("FIGURE push without webhook → 3 Ready workers by the schedule (@every 4s): %s", time.Since(pushed).Round(10*time.Millisecond))
	CheckShape(ctx, t, w, up3)
	if n := len(aw.Sim.Instances()); n != 6 {
		t.Errorf("the emulator holds %d instances, want 6", n)
	}
}

// specFile is the spec file of c (JSON, which YAML reads); loading it back
// must give c exactly, so the daemons plan against what was bootstrapped.
func specFile(t *testing.T, c schema.Cluster) string {
	t.Helper()
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	res, err := schema.Load([]schema.File{{Name: "cluster.yaml", Data: b}})
	if err != nil {
		t.Fatalf("the spec file does not load: %v", err)
	}
	got := res.Clusters[0]
	got.Pos = schema.Pos{}
	if len(res.Clusters) != 1 || !reflect.DeepEqual(got, c) {
		t.Fatalf("the spec file loads as another cluster:\n%s", b)
	}
	return string(b) + "\n"
}

// serviceDaemons returns the cluster's 3 running managers, by instance id.
func serviceDaemons(ctx context.Context, t *testing.T, aw *AWSWorld) []*serviceDaemon {
	t.Helper()
	insts, err := aw.Cloud.Instances(ctx, aw.Spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	var ds []*serviceDaemon
	for _, in := range insts {
		if in.Group != schema.ManagersGroup || in.State != providers.StateRunning {
			continue
		}
		ep, ok := aw.Booter.Endpoint(in.ID)
		if !ok {
			t.Fatalf("manager %s has no lab machine", in.ID)
		}
		ds = append(ds, &serviceDaemon{inst: in, endpoint: ep, addr: net.JoinHostPort(in.PrivateIP, "9090")})
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].inst.ID < ds[j].inst.ID })
	if len(ds) != 3 {
		t.Fatalf("%d running managers, want 3", len(ds))
	}
	return ds
}

// copyImage copies tag from one engine to another: docker save | docker
// load.
func copyImage(t *testing.T, from, to, tag string) {
	t.Helper()
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var saveErr, loadOut bytes.Buffer
	save := exec.Command("docker", "save", tag)
	save.Env = append(os.Environ(), "DOCKER_HOST="+from)
	save.Stdout, save.Stderr = wr, &saveErr
	load := exec.Command("docker", "load", "-q")
	load.Env = append(os.Environ(), "DOCKER_HOST="+to)
	load.Stdin, load.Stdout, load.Stderr = r, &loadOut, &loadOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	serr := save.Start()
	r.Close()
	wr.Close()
	if serr == nil {
		serr = save.Wait()
	}
	lerr := load.Wait()
	if serr != nil || lerr != nil {
		t.Fatalf("docker save %s | docker load: %v, %v\n%s%s", tag, serr, lerr, saveErr.String(), loadOut.String())
	}
}

// createSecret creates a Docker secret through endpoint.
func createSecret(t *testing.T, endpoint, name, value string) {
	t.Helper()
	cmd := exec.Command("docker", "secret", "create", name, "-")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+endpoint)
	cmd.Stdin = strings.NewReader(value + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker secret create %s: %v\n%s", name, err, out)
	}
}

// checkServiceSpec checks that the lab's compose file changed only what it
// says: still global on managers, one socket mount (its source per
// machine), both secrets.
func checkServiceSpec(t *testing.T, endpoint, socket string) {
	t.Helper()
	var svc struct {
		Spec struct {
			Mode         struct{ Global *struct{} }
			TaskTemplate struct {
				ContainerSpec struct {
					Mounts  []struct{ Source, Target string }
					Secrets []struct{ File struct{ Name string } }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(dockerCLI(t, endpoint, "service", "inspect", "--format", "{{json .}}", serviceName)), &svc); err != nil {
		t.Fatal(err)
	}
	cs := svc.Spec.TaskTemplate.ContainerSpec
	if svc.Spec.Mode.Global == nil {
		t.Error("the service is not global")
	}
	if len(cs.Mounts) != 1 || cs.Mounts[0].Target != "/var/run/docker.sock" || cs.Mounts[0].Source != socket {
		t.Errorf("mounts = %+v, want the engine socket %s", cs.Mounts, socket)
	}
	if len(cs.Secrets) != 2 {
		t.Errorf("secrets = %+v, want the two of deploy/stack.yml", cs.Secrets)
	}
}

// readyWorkers counts the Ready workers seen from d's manager.
func readyWorkers(ctx context.Context, d *serviceDaemon) (int, error) {
	sw, err := docker.New(d.endpoint)
	if err != nil {
		return 0, err
	}
	defer sw.Close()
	obs, err := sw.Observe(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, nd := range obs.Nodes {
		if nd.Role == providers.RoleWorker && nd.State == providers.NodeReady {
			n++
		}
	}
	return n, nil
}

// dockerOutput runs the docker CLI against endpoint, for diagnostics.
func dockerOutput(endpoint string, args ...string) string {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+endpoint)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(docker %s: %v)", out, strings.Join(args, " "), err)
	}
	return string(out)
}

// serviceLogs shows, per manager, the service's tasks there, the last lines
// of their containers' logs and the daemon's /status.
func serviceLogs(ds []*serviceDaemon) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "--- manager %s (%s):\n", d.inst.ID, d.addr)
		b.WriteString(dockerOutput(d.endpoint, "service", "ps", "--no-trunc", "--format", "{{.Node}} {{.CurrentState}} {{.Error}}", serviceName))
		ids := strings.Fields(dockerOutput(d.endpoint, "ps", "-aq", "--filter", "label=com.docker.swarm.service.name="+serviceName))
		for i, id := range ids {
			if i == 2 {
				break
			}
			fmt.Fprintf(&b, "container %s:\n%s", id, dockerOutput(d.endpoint, "logs", "--tail", "40", id))
		}
		st, err := d.status()
		fmt.Fprintf(&b, "status: %+v %v\n", st, err)
	}
	return b.String()
}

// removeStack removes the stack and waits (at most 2 min) until no task
// container is left on the managers, so the machines stop without them.
func removeStack(t *testing.T, ds []*serviceDaemon) {
	if out := dockerOutput(ds[0].endpoint, "stack", "rm", "swarmsync"); strings.Contains(out, "(docker ") {
		t.Logf("cleanup: %s", out)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := lab.Poll(ctx, func() (bool, error) {
		for _, d := range ds {
			if strings.TrimSpace(dockerOutput(d.endpoint, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+serviceName)) != "" {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Logf("cleanup: the stack's containers still run: %v", err)
	}
}

// serviceStack is deploy/stack.yml deployed on an AWS world's 3 managers.
type serviceStack struct {
	daemons   []*serviceDaemon // the 3 tasks, by instance id
	leader    *serviceDaemon   // the task with an ok first pass
	followers []*serviceDaemon
	bare      string // the bare repository git daemon serves
	secret    []byte // the webhook secret

	mu   sync.Mutex
	live []*serviceDaemon // the managers the cleanup removes the stack through
}

func (s *serviceStack) setLive(ds []*serviceDaemon) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = ds
}

// deployService is TestDaemonServiceOnAWSPath's deployment: the emulator
// and git daemon also served on the lab bridge, the image built on one
// manager and copied to the others, both secrets, the lab's compose file
// over deploy/stack.yml. It waits until one task is the leader with an ok
// pass on commit c1 that ran no step, and the two others are followers.
// The stack is removed at cleanup, through the managers still alive.
func deployService(ctx context.Context, t *testing.T, aw *AWSWorld, subnet int, spec schema.Cluster, repo *gitserve.Repo, c1 string) *serviceStack {
	t.Helper()
	// The host's address on the lab bridge: the subnet's first address.
	cidr := netip.MustParsePrefix(fmt.Sprintf("10.247.%d.0/24", subnet))
	gateway := cidr.Addr().Next().String()
	ec2URL, err := aw.Sim.ServeOn(gateway)
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	s := &serviceStack{bare: repo.Bare(filepath.Join(base, "specs.git")), secret: []byte("e2e-webhook-secret-4c1d")}
	remote := gitserve.StartDaemonOn(t, base, gateway).URL + "specs.git"

	s.daemons = serviceDaemons(ctx, t, aw)
	s.live = s.daemons
	const tag = "swarmsync:e2e"
	buildImage(t, s.daemons[0].endpoint, tag)
	start := time.Now()
	for _, d := range s.daemons[1:] {
		copyImage(t, s.daemons[0].endpoint, d.endpoint, tag)
	}
	t.Logf("FIGURE image copied to 2 managers (docker save | docker load): %s", time.Since(start).Round(10*time.Millisecond))
	ep := s.daemons[0].endpoint
	createSecret(t, ep, "swarmsync_webhook_secret", string(s.secret))
	createSecret(t, ep, "swarmsync_git_token", "e2e-git-token-unused-over-git-protocol")

	sock := strings.TrimPrefix(ep, "unix://")
	for _, d := range s.daemons {
		got := strings.TrimSpace(dockerCLI(t, d.endpoint, "info", "--format", "{{.Name}}"))
		if want := filepath.Base(filepath.Dir(strings.TrimPrefix(d.endpoint, "unix://"))); got != want {
			t.Fatalf("the engine of %s is named %q, want its machine's id %q (the socket mount relies on it)", d.inst.ID, got, want)
		}
	}
	socketTemplate := filepath.Join(filepath.Dir(filepath.Dir(sock)), "{{.Node.Hostname}}", filepath.Base(sock))
	override := filepath.Join(t.TempDir(), "lab.yml")
	if err := os.WriteFile(override, fmt.Appendf(nil, `version: "3.8"
services:
  swarmsync:
    environment:
      AWS_ENDPOINT_URL: %q
      AWS_ACCESS_KEY_ID: %q
      AWS_SECRET_ACCESS_KEY: %q
      AWS_REGION: %q
    volumes:
      - type: bind
        source: %q
        target: /var/run/docker.sock
`, ec2URL, awsAccessKey, awsSecretKey, awsRegion, socketTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	deploy := exec.Command("docker", "stack", "deploy", "--resolve-image", "never",
		"-c", filepath.Join(root, "deploy", "stack.yml"), "-c", override, "swarmsync")
	deploy.Env = append(os.Environ(), "DOCKER_HOST="+ep, "SWARMSYNC_IMAGE="+tag,
		"SWARMSYNC_REPO="+remote, "SWARMSYNC_CLUSTER="+spec.Name)
	deployed := time.Now()
	if out, err := deploy.CombinedOutput(); err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		live := s.live
		s.mu.Unlock()
		removeStack(t, live)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(serviceLogs(s.daemons))
		}
	})
	checkServiceSpec(t, ep, socketTemplate)

	var seen []string
	if err := lab.Poll(ctx, func() (bool, error) {
		s.leader, s.followers, seen = nil, nil, nil
		for _, d := range s.daemons {
			st, err := d.status()
			seen = append(seen, fmt.Sprintf("%s: %+v %v", d.inst.ID, st, err))
			switch {
			case err != nil || st.LeaderError != "":
			case st.Leader && st.Passes > 0 && st.LastResult == apply.ResultOK:
				s.leader = d
			case !st.Leader && st.Skipped > 0:
				s.followers = append(s.followers, d)
			}
		}
		return s.leader != nil && len(s.followers) == 2, nil
	}); err != nil {
		t.Fatalf("the service's tasks are not 1 leader with an ok pass and 2 followers: %v\n%s", err, strings.Join(seen, "\n"))
	}
	t.Logf("FIGURE stack deployed → 3 tasks answering, the leader's first pass ok: %s", time.Since(deployed).Round(10*time.Millisecond))
	if st := s.leader.mustStatus(t); st.LastCommit != c1 || st.LastSteps != 0 {
		t.Errorf("the leader's first pass read %.8s and ran %d steps, want %.8s and none (the cluster is as the spec says)", st.LastCommit, st.LastSteps, c1)
	}
	return s
}
