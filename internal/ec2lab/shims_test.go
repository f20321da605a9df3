package ec2lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCurlShim runs the IMDS shim with sh: the IMDSv2 flow the aws
// template uses answers from the instance's data, and every departure from
// it fails like curl -f would.
func TestCurlShim(t *testing.T) {
	dir := t.TempDir()
	data, err := shimFS.ReadFile("shims/curl")
	if err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(dir, "curl")
	if err := os.WriteFile(shim, data, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "real-curl")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"real curl: $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=/usr/bin:/bin", "EC2LAB_INSTANCE_ID=i-0123456789abcdef0", "EC2LAB_LOCAL_IPV4=10.247.9.4",
		"EC2LAB_ZONE=us-east-1b", "EC2LAB_IMDS_TOKEN=tok123", "EC2LAB_REAL_CURL=" + fake,
	}
	const imds = "http://169.254.169.254/latest"
	type result struct {
		Out  string
		Code int
	}
	tests := []struct {
		name string
		args []string
		want result
	}{
		{"token", []string{"-sS", "-X", "PUT", imds + "/api/token", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 300"}, result{"tok123", 0}},
		{"token without ttl", []string{"-sS", "-X", "PUT", imds + "/api/token"}, result{"", 22}},
		{"token ttl too long", []string{"-sS", "-X", "PUT", imds + "/api/token", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 99999"}, result{"", 22}},
		{"instance id", []string{"-sS", "-H", "X-aws-ec2-metadata-token: tok123", imds + "/meta-data/instance-id"}, result{"i-0123456789abcdef0", 0}},
		{"private ip", []string{"-sS", "-H", "x-aws-ec2-metadata-token:tok123", imds + "/meta-data/local-ipv4"}, result{"10.247.9.4", 0}},
		{"zone", []string{"-sS", "-H", "X-aws-ec2-metadata-token: tok123", imds + "/meta-data/placement/availability-zone"}, result{"us-east-1b", 0}},
		{"region", []string{"-sS", "-H", "X-aws-ec2-metadata-token: tok123", imds + "/meta-data/placement/region"}, result{"us-east-1", 0}},
		{"IMDSv1 refused", []string{"-sS", imds + "/meta-data/instance-id"}, result{"", 22}},
		{"wrong token", []string{"-sS", "-H", "X-aws-ec2-metadata-token: nope", imds + "/meta-data/instance-id"}, result{"", 22}},
		{"unknown key", []string{"-sS", "-H", "X-aws-ec2-metadata-token: tok123", imds + "/meta-data/iam/info"}, result{"", 22}},
		{"PUT on meta-data", []string{"-sS", "-X", "PUT", "-H", "X-aws-ec2-metadata-token: tok123", imds + "/meta-data/instance-id"}, result{"", 22}},
		{"other URL goes to the real curl", []string{"-fsS", "-o", "/dev/null", "http://127.0.0.1:9/x"}, result{"real curl: -fsS -o /dev/null http://127.0.0.1:9/x\n", 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", append([]string{shim}, tt.args...)...)
			cmd.Env = env
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			got := result{Out: string(out)}
			if ee, ok := err.(*exec.ExitError); ok {
				got.Code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("curl %s (-want +got):\n%s\nstderr: %s", strings.Join(tt.args, " "), diff, stderr.String())
			}
			if got.Code != 0 && !strings.Contains(stderr.String(), "IMDS:") {
				t.Errorf("a refused request says nothing on stderr: %q", stderr.String())
			}
		})
	}
}

// TestSystemctlShimRefusesOtherUnits: only "restart docker" is emulated.
func TestSystemctlShimRefusesOtherUnits(t *testing.T) {
	dir := t.TempDir()
	data, err := shimFS.ReadFile("shims/systemctl")
	if err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(dir, "systemctl")
	if err := os.WriteFile(shim, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"restart", "containerd"}, {"stop", "docker"}, {"daemon-reload"}} {
		cmd := exec.Command("sh", append([]string{shim}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "EC2LAB_INSTANCE_ID=i-0123456789abcdef0"}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "emulates only") {
			t.Errorf("systemctl %s: err %v, output %q; want a refusal", strings.Join(args, " "), err, out)
		}
	}
}

func TestInterpreter(t *testing.T) {
	tests := []struct {
		name, userData, want string
		wantErr              bool
	}{
		{"bash", "#!/bin/bash\necho hi\n", "'/bin/bash'", false},
		{"env with argument", "#!/usr/bin/env bash\n", "'/usr/bin/env' 'bash'", false},
		{"no shebang", "echo hi\n", "sh", false},
		{"cloud-config", "#cloud-config\nruncmd: []\n", "", true},
		{"mime", "Content-Type: multipart/mixed\n", "", true},
		{"empty shebang", "#!\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := interpreter([]byte(tt.userData))
			if (err != nil) != tt.wantErr {
				t.Fatalf("interpreter: err %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("interpreter (-want +got):\n%s", diff)
			}
		})
	}
}
