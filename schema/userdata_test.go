package schema

import (
	"strings"
	"testing"
)

// The join token reaches the user data only whole, through join: no field
// holds it and no template function cuts it.
func TestRenderUserDataTokenOnlyWhole(t *testing.T) {
	const token = "SWMTKN-1-0123456789abcdefghij-klmnopqrstuv"
	in := UserData{Cluster: "c", Group: "workers/w", Role: "worker", ManagerAddr: "10.0.0.1:2377", Provider: "aws"}
	tests := []struct{ name, tmpl, want, wantErr string }{
		{"join", `{{join "$ip"}}`, `docker swarm join --token ` + token + ` --advertise-addr "$ip" 10.0.0.1:2377`, ""},
		{"printf precision prints it whole", `{{printf "%.30s" (join "x")}}`, "--token " + token + " ", ""},
		{"printf hex prints it whole", `{{printf "%x" (join "x")}}`, "--token " + token + " ", ""},
		{"no token field", `{{.JoinToken}}`, "", "can't evaluate field JoinToken"},
		{"no slice", `{{slice (join "x") 26 40}}`, "", "can't slice"},
		{"no index", `{{index (join "x") 30}}`, "", "can't index"},
		{"no unexported field", `{{(join "x").text}}`, "", "unexported field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := RenderUserData(tc.tmpl, in, token)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), token[9:20]) {
					t.Errorf("error carries the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("got %q, want it to contain %q", out, tc.want)
			}
		})
	}
}

func TestCheckUserData(t *testing.T) {
	tests := []struct{ name, tmpl, want string }{
		{"fine", "#!/bin/sh\n{{if .Init}}docker swarm init{{else}}{{join \"$ip\"}}{{end}}\n", ""},
		{"syntax", "{{.Cluster", "the template does not parse: userData:1: unclosed action"},
		{"unknown field", "{{.JoinToken}}", "the template does not render: userData:1:2: executing \"userData\" at <.JoinToken>: can't evaluate field JoinToken in type schema.UserData"},
		{"join on init", `{{join "$ip"}}`, "the template does not render: userData:1:2: executing \"userData\" at <join \"$ip\">: error calling join: join is for a joining node: put it under {{if not .Init}}"},
		{"too large once rendered", "{{if not .Init}}{{join \"x\"}}{{end}}" + strings.Repeat("#", UserDataLimit-60), "the rendered user data is 16504 bytes: EC2 accepts at most 16384 bytes (16 KB before base64 encoding)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CheckUserData(tc.tmpl, "aws", nil); got != tc.want {
				t.Errorf("CheckUserData = %q, want %q", got, tc.want)
			}
		})
	}
}
