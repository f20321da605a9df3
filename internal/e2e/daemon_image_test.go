package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
)

// docker runs the docker CLI against endpoint and returns its stdout.
func dockerCLI(t testing.TB, endpoint string, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+endpoint)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// buildImage builds swarmsync's image with deploy/build.sh on the engine at
// endpoint (no registry, no base image).
func buildImage(t testing.TB, endpoint, tag string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command(filepath.Join(root, "deploy", "build.sh"), tag)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+endpoint, "SWARMSYNC_VERSION=e2e")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build.sh: %v\n%s", err, out)
	}
	t.Logf("FIGURE image build (deploy/build.sh): %s", time.Since(start).Round(10*time.Millisecond))
}

// TestImageAndStackOnLabManager builds the image FROM scratch on a lab
// engine (offline), runs it, and deploys deploy/stack.yml on the lab's
// Swarm: one task per manager, the socket and both secrets mounted.
func TestImageAndStackOnLabManager(t *testing.T) {
	testenv.NeedLab(t)
	testenv.NeedCommands(t, "docker", "go")
	l := lab.Start(t, lab.Options{Managers: 1, Workers: 1, NoImage: true})
	ep := l.Cloud.Endpoint(l.Managers[0].ID)
	const tag = "swarmsync:e2e"
	buildImage(t, ep, tag)

	var img struct {
		Parent string
		RootFS struct{ Layers []string }
		Config struct{ Entrypoint []string }
	}
	if err := json.Unmarshal([]byte(dockerCLI(t, ep, "image", "inspect", "--format", "{{json .}}", tag)), &img); err != nil {
		t.Fatal(err)
	}
	// FROM scratch: two COPY layers, no parent image.
	if img.Parent != "" && !strings.HasPrefix(img.Parent, "sha256:") || len(img.RootFS.Layers) != 2 {
		t.Errorf("image is not two layers from scratch: parent %q, %d layers", img.Parent, len(img.RootFS.Layers))
	}
	if got := dockerCLI(t, ep, "run", "--rm", "--network", "none", tag, "version"); !strings.HasPrefix(got, "swarmsync e2e (") {
		t.Errorf("swarmsync version in the image = %q", got)
	}
	// The CA bundle is the image's only directory besides the binary's.
	ca := exec.Command("docker", "run", "--rm", "--network", "none", tag, "validate", "--repo", "/etc/ssl/certs")
	ca.Env = append(os.Environ(), "DOCKER_HOST="+ep)
	if out, _ := ca.CombinedOutput(); !strings.Contains(string(out), "no cluster specs") || !strings.Contains(string(out), "/etc/ssl/certs") {
		t.Errorf("the image has no /etc/ssl/certs: %s", out)
	}

	for _, s := range []string{"swarmsync_git_token", "swarmsync_webhook_secret"} {
		cmd := exec.Command("docker", "secret", "create", s, "-")
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+ep)
		cmd.Stdin = strings.NewReader("not-a-real-secret\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker secret create %s: %v\n%s", s, err, out)
		}
	}
	cmd := exec.Command("docker", "stack", "deploy", "-c", "../../deploy/stack.yml", "swarmsync")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+ep, "SWARMSYNC_IMAGE="+tag, "SWARMSYNC_REPO=https://git.invalid/specs.git")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
	var svc struct {
		Spec struct {
			Mode         struct{ Global *struct{} }
			TaskTemplate struct {
				ContainerSpec struct {
					Args    []string
					Mounts  []struct{ Source, Target string }
					Secrets []struct{ File struct{ Name string } }
				}
				Placement struct{ Constraints []string }
			}
		}
	}
	if err := json.Unmarshal([]byte(dockerCLI(t, ep, "service", "inspect", "--format", "{{json .}}", "swarmsync_swarmsync")), &svc); err != nil {
		t.Fatal(err)
	}
	cs := svc.Spec.TaskTemplate.ContainerSpec
	if svc.Spec.Mode.Global == nil {
		t.Error("the service is not global")
	}
	if c := svc.Spec.TaskTemplate.Placement.Constraints; len(c) != 1 || strings.ReplaceAll(c[0], " ", "") != "node.role==manager" {
		t.Errorf("constraints = %q, want node.role == manager", c)
	}
	if len(cs.Mounts) != 1 || cs.Mounts[0].Target != "/var/run/docker.sock" {
		t.Errorf("mounts = %+v, want the docker socket", cs.Mounts)
	}
	var secrets []string
	for _, s := range cs.Secrets {
		secrets = append(secrets, s.File.Name)
	}
	if strings.Join(secrets, ",") != "swarmsync_git_token,swarmsync_webhook_secret" {
		t.Errorf("secrets = %q", secrets)
	}
	args := strings.Join(cs.Args, " ")
	for _, w := range []string{"apply --auto", "--repo=https://git.invalid/specs.git", "--git-token-file=/run/secrets/swarmsync_git_token"} {
		if !strings.Contains(args, w) {
			t.Errorf("service args %q lack %q", args, w)
		}
	}
	// One task, on the manager only, that really started the binary.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lab.Poll(ctx, func() (bool, error) {
		out := dockerCLI(t, ep, "service", "ps", "--format", "{{.Node}} {{.CurrentState}}", "swarmsync_swarmsync")
		return strings.Contains(out, l.Managers[0].ID) && (strings.Contains(out, "Running") || strings.Contains(out, "Failed")), nil
	}); err != nil {
		t.Fatalf("no task of the stack started on the manager: %v", err)
	}
	if out := dockerCLI(t, ep, "service", "ps", "--format", "{{.Node}}", "swarmsync_swarmsync"); strings.Contains(out, l.Workers[0].ID) {
		t.Errorf("a task ran on a worker:\n%s", out)
	}
}
