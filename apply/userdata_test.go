package apply

import (
	"strings"
	"testing"
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
