package apply

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

func TestRenderUserData(t *testing.T) {
	join := UserDataInput{Cluster: "c1", Group: "workers/general", Role: "worker", JoinToken: "SWMTKN-1-abc", ManagerAddr: "10.9.0.1:2377"}
	tests := []struct {
		name     string
		tmpl     string
		provider string
		init     bool
		want     []string
		wantErr  string
	}{
		{name: "local init", provider: "local", init: true, want: []string{`docker swarm init --advertise-addr "$SWARMSYNC_PRIVATE_IP"`, "DOCKER_HOST:?"}},
		{name: "local join", provider: "local", want: []string{`docker swarm join --token SWMTKN-1-abc --advertise-addr "$SWARMSYNC_PRIVATE_IP" 10.9.0.1:2377`, "{{.Swarm.LocalNodeState}}"}},
		{name: "aws join sets the engine label", provider: "aws", want: []string{"swarmsync.instance=", "/etc/docker/daemon.json", "systemctl restart docker", "docker swarm join --token SWMTKN-1-abc"}},
		{name: "aws init", provider: "aws", init: true, want: []string{`docker swarm init --advertise-addr "$private_ip"`}},
		{name: "custom", provider: "aws", tmpl: "join {{.ManagerAddr}} as {{.Role}} of {{.Cluster}}", want: []string{"join 10.9.0.1:2377 as worker of c1"}},
		{name: "custom parse error", provider: "aws", tmpl: "{{.Nope", wantErr: "failed to parse the user-data template (spec field userData)"},
		{name: "custom unknown field", provider: "aws", tmpl: "{{.Nope}}", wantErr: "failed to render the user-data template"},
		{name: "unknown provider", provider: "mars", wantErr: `no default user-data template for provider "mars"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := join
			in.Provider = tc.provider
			if tc.init {
				in.Init, in.JoinToken, in.ManagerAddr = true, "", ""
			}
			out, err := RenderUserData(tc.tmpl, in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "SWMTKN") {
					t.Errorf("error carries the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("user data lacks %q:\n%s", w, out)
				}
			}
			if tc.init && strings.Contains(string(out), "swarm join") {
				t.Errorf("init user data joins:\n%s", out)
			}
		})
	}
	if _, err := RenderUserData("", UserDataInput{Provider: "local"}); err == nil {
		t.Error("a join without token and address rendered")
	}
}

// TestUserDataStartsDaemon: with the spec's daemon enabled, the user data of
// the launch that creates the Swarm creates the global service, every spec
// value quoted as one shell word; other launches start nothing.
func TestUserDataStartsDaemon(t *testing.T) {
	d := &schema.Daemon{Enabled: true, Image: "reg.example/swarmsync:v1'; touch /tmp/owned; '", Repo: "https://git.example/ops/c.git", Path: "prod", Port: 9191}
	for _, provider := range []string{"aws", "local"} {
		t.Run(provider, func(t *testing.T) {
			out, err := RenderUserData("", UserDataInput{Cluster: "c1", Group: "managers", Role: providers.RoleManager, Init: true, Provider: provider, Daemon: d})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{
				"docker service create --detach --name swarmsync",
				"--mode global --constraint node.role==manager",
				"--publish mode=host,target=9191,published=9191",
				`'reg.example/swarmsync:v1'\''; touch /tmp/owned; '\'''`,
				"--repo 'https://git.example/ops/c.git' --cluster 'c1' --path 'prod'",
				"--listen :9191",
			} {
				if !strings.Contains(string(out), w) {
					t.Errorf("user data lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "--ref") {
				t.Errorf("user data names a ref the spec does not:\n%s", out)
			}
			sh := exec.Command("sh", "-n")
			sh.Stdin = strings.NewReader(string(out))
			if b, err := sh.CombinedOutput(); err != nil {
				t.Errorf("user data is not valid sh: %v\n%s\n%s", err, b, out)
			}
			join, err := RenderUserData("", UserDataInput{Cluster: "c1", Group: "managers", Role: providers.RoleManager, Provider: provider, JoinToken: "t", ManagerAddr: "10.0.0.1:2377"})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(join), "service create") {
				t.Errorf("a join starts the daemon:\n%s", join)
			}
		})
	}
}
