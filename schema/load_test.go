package schema

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func dur(s string) Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return Duration{d}
}

// defaults is every default of schema.cue, for a cluster that sets only
// what is required.
func defaults(c Cluster) Cluster {
	c.Update = Update{Parallelism: 1, MaxSurge: 1, Delay: dur("30s"), Monitor: dur("60s"), FailureAction: "pause", JoinTimeout: dur("10m"), DrainTimeout: dur("5m"), DownGrace: dur("5m")}
	c.Schedule = Schedule{Reconcile: "@every 1m"}
	c.Safety = Safety{MaxRemovalsPerApply: 5}
	c.JoinTokens = JoinTokens{RotateAfterJoin: true}
	if c.Managers.Availability == "" {
		c.Managers.Availability = "drain"
	}
	return c
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files []File
		want  []Cluster
	}{
		{
			name:  "minimal yaml gets every default",
			files: []File{{"c.yaml", []byte("name: a\nprovider: {local: {}}\nmanagers: {count: 1}\n")}},
			want: []Cluster{defaults(Cluster{
				Name: "a", Provider: Provider{Local: &LocalProvider{Subnet: "10.231.0.0/24"}},
				Managers: Managers{Count: 1}, Pos: Pos{"c.yaml", 1, 1},
			})},
		},
		{
			name: "worker groups default to active, managers to drain",
			files: []File{{"c.yml", []byte("name: a\nprovider: {local: {subnet: 10.9.0.0/16}}\nmanagers: {count: 5, labels: {role: cp}}\n" +
				"workers:\n  web: {count: 0}\n  db: {count: 3, availability: pause}\n")}},
			want: []Cluster{defaults(Cluster{
				Name: "a", Provider: Provider{Local: &LocalProvider{Subnet: "10.9.0.0/16"}},
				Managers: Managers{Count: 5, Labels: map[string]string{"role": "cp"}},
				Workers: map[string]WorkerGroup{
					"web": {Count: 0, Availability: "active"},
					"db":  {Count: 3, Availability: "pause"},
				},
				Pos: Pos{"c.yml", 1, 1},
			})},
		},
		{
			name: "multi-document yaml, sorted by name, empty documents skipped",
			files: []File{{"c.yaml", []byte("---\nname: zeta\nprovider: {local: {}}\nmanagers: {count: 1}\n---\n---\n" +
				"name: alpha\nprovider: {aws: {region: us-east-1}}\nmanagers: {count: 7, instance: {type: t3.small, image: ami-1, subnets: [s-1]}}\n" +
				"joinTokens: {rotateAfterJoin: false}\nuserData: |\n  #!/bin/sh\n  echo {{.Cluster}}\n")}},
			want: []Cluster{
				func() Cluster {
					c := defaults(Cluster{
						Name: "alpha", Provider: Provider{AWS: &AWSProvider{Region: "us-east-1"}},
						Managers: Managers{Count: 7, Instance: Instance{Type: "t3.small", Image: "ami-1", Subnets: []string{"s-1"}}},
						UserData: "#!/bin/sh\necho {{.Cluster}}\n",
						Pos:      Pos{"c.yaml", 7, 1},
					})
					c.JoinTokens.RotateAfterJoin = false
					return c
				}(),
				defaults(Cluster{Name: "zeta", Provider: Provider{Local: &LocalProvider{Subnet: "10.231.0.0/24"}}, Managers: Managers{Count: 1}, Pos: Pos{"c.yaml", 2, 1}}),
			},
		},
		{
			name: "daemon gets its default port",
			files: []File{{"c.yaml", []byte("name: a\nprovider: {local: {}}\nmanagers: {count: 1, availability: active}\n" +
				"daemon: {enabled: true, image: 'swarmsync:v1', repo: 'https://git.example.com/ops/c.git', path: prod}\n")}},
			want: []Cluster{func() Cluster {
				c := defaults(Cluster{Name: "a", Provider: Provider{Local: &LocalProvider{Subnet: "10.231.0.0/24"}}, Managers: Managers{Count: 1}, Pos: Pos{"c.yaml", 1, 1}})
				c.Managers.Availability = "active"
				c.Daemon = &Daemon{Enabled: true, Image: "swarmsync:v1", Repo: "https://git.example.com/ops/c.git", Path: "prod", Port: 9090}
				return c
			}()},
		},
		{
			name: "schedules accept descriptors and five fields",
			files: []File{{"c.yaml", []byte("name: a\nprovider: {local: {}}\nmanagers: {count: 3}\n" +
				"schedule: {reconcile: '*/5 * * * *', rotateJoinTokens: '@weekly', disruptionWindows: [{cron: '@every 6h', duration: 30m}, {cron: '0 2 * * SAT', duration: 4h}]}\n")}},
			want: []Cluster{func() Cluster {
				c := defaults(Cluster{Name: "a", Provider: Provider{Local: &LocalProvider{Subnet: "10.231.0.0/24"}}, Managers: Managers{Count: 3}, Pos: Pos{"c.yaml", 1, 1}})
				c.Schedule = Schedule{Reconcile: "*/5 * * * *", RotateJoinTokens: "@weekly", DisruptionWindows: []Window{{"@every 6h", dur("30m")}, {"0 2 * * SAT", dur("4h")}}}
				return c
			}()},
		},
		{
			name: "cue package: clusters share defaults across files",
			files: []File{
				{"a.cue", []byte("package x\n\nclusters: [_]: {provider: local: {}, update: delay: \"5s\"}\n")},
				{"b.cue", []byte("package x\n\nclusters: one: managers: count: 1\nclusters: two: {\n\tmanagers: count: 3\n\tworkers: w: count: 2\n}\n")},
			},
			want: []Cluster{
				func() Cluster {
					c := defaults(Cluster{Name: "one", Provider: Provider{Local: &LocalProvider{Subnet: "10.231.0.0/24"}}, Managers: Managers{Count: 1}, Pos: Pos{"b.cue", 3, 11}})
					c.Update.Delay = dur("5s")
					return c
				}(),
				func() Cluster {
					c := defaults(Cluster{Name: "two", Provider: Provider{Local: &LocalProvider{Subnet: "10.231.0.0/24"}}, Managers: Managers{Count: 3},
						Workers: map[string]WorkerGroup{"w": {Count: 2, Availability: "active"}}, Pos: Pos{"b.cue", 4, 11}})
					c.Update.Delay = dur("5s")
					return c
				}(),
			},
		},
		{
			name:  "cue without a package clause, using #Cluster and the standard library",
			files: []File{{"a.cue", []byte("import \"strings\"\nclusters: a: #Cluster & {name: strings.ToLower(\"A\"), provider: local: {}, managers: count: 1}\n")}},
			want:  []Cluster{defaults(Cluster{Name: "a", Provider: Provider{Local: &LocalProvider{Subnet: "10.231.0.0/24"}}, Managers: Managers{Count: 1}, Pos: Pos{"a.cue", 2, 11}})},
		},
		{
			name: "cue and yaml together",
			files: []File{
				{"a.cue", []byte("package x\n_m: #Managers & {count: 3}\nclusters: c: {provider: local: {}, managers: _m}\n")},
				{"b.yaml", []byte("name: d\nprovider: {local: {}}\nmanagers: {count: 1}\n")},
			},
			want: []Cluster{
				defaults(Cluster{Name: "c", Provider: Provider{Local: &LocalProvider{Subnet: "10.231.0.0/24"}}, Managers: Managers{Count: 3}, Pos: Pos{"a.cue", 3, 11}}),
				defaults(Cluster{Name: "d", Provider: Provider{Local: &LocalProvider{Subnet: "10.231.0.0/24"}}, Managers: Managers{Count: 1}, Pos: Pos{"b.yaml", 1, 1}}),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Load(tt.files)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, res.Clusters); diff != "" {
				t.Errorf("clusters (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadDiagnostics(t *testing.T) {
	const ok = "provider: {local: {}}\nmanagers: {count: 1}\n"
	tests := []struct {
		name  string
		files []File
		want  []string
	}{
		{
			name:  "local subnet must be a network address",
			files: []File{{"c.yaml", []byte("name: a\nprovider: {local: {subnet: 10.0.0.5/24}}\nmanagers: {count: 1}\n")}},
			want:  []string{`c.yaml:2:20: provider.local.subnet: invalid subnet "10.0.0.5/24": host bits are set (the network is 10.0.0.0/24); expected an IPv4 CIDR from /16 to /28, like 10.231.0.0/24`},
		},
		{
			name:  "local subnet must be IPv4",
			files: []File{{"c.yaml", []byte("name: a\nprovider: {local: {subnet: 'fd00::/64'}}\nmanagers: {count: 1}\n")}},
			want:  []string{`c.yaml:2:20: provider.local.subnet: invalid subnet "fd00::/64": not IPv4; expected an IPv4 CIDR from /16 to /28, like 10.231.0.0/24`},
		},
		{
			name:  "aws region format",
			files: []File{{"c.yaml", []byte("name: a\nprovider: {aws: {region: Ireland}}\nmanagers: {count: 1, instance: {type: t, image: i, subnets: [s]}}\n")}},
			want:  []string{`c.yaml:2:18: provider.aws.region: invalid value "Ireland"; expected an AWS region like eu-west-1`},
		},
		{
			name: "errors in two files are all reported",
			files: []File{
				{"a.yaml", []byte("name: a\n" + ok + "update: {delay: soon}\n")},
				{"b.yaml", []byte("name: b\nprovider: {local: {}}\nmanagers: {count: 6}\n")},
			},
			want: []string{
				`a.yaml:4:10: update.delay: invalid duration "soon"; expected a duration like 30s, 5m or 1h30m (units ns, us, ms, s, m, h)`,
				`b.yaml:3:12: managers.count: invalid value 6; expected 1, 3, 5 or 7: a raft membership of n managers tolerates (n-1)/2 failures, so an even count adds risk without adding tolerance`,
			},
		},
		{
			name:  "labels must be strings",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "workers: {w: {count: 1, labels: {gen: 2}}}\n")}},
			want:  []string{`c.yaml:4:34: workers.w.labels.gen: invalid value 2; expected a string: quote it ("2")`},
		},
		{
			name:  "label keys follow Docker's rule; values hold no control character",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "workers: {w: {count: 1, labels: {Tier: a, com.docker.x: b, a..b: c, \"k\\e[31m\": d, ok: \"v\\r\"}}}\n")}},
			want: []string{
				`c.yaml:4:34: workers.w.labels.Tier: invalid label key "Tier": does not start with a lowercase letter; ` + labelKeyRule,
				`c.yaml:4:43: workers.w.labels."com.docker.x": invalid label key "com.docker.x": the prefix is reserved by Docker; ` + labelKeyRule,
				`c.yaml:4:60: workers.w.labels."a..b": invalid label key "a..b": consecutive '.' or '-'; ` + labelKeyRule,
				`c.yaml:4:69: workers.w.labels."k\u001b[31m": invalid label key "k\x1b[31m": character '\x1b' is not allowed; ` + labelKeyRule,
				`c.yaml:4:83: workers.w.labels.ok: label ok has a control character in its value; a label value is text shown in plans and terminals: remove the control characters`,
			},
		},
		{
			name:  "a group counts at most 1000 workers",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "workers: {w: {count: 9223372036854775807}}\n")}},
			want:  []string{`c.yaml:4:15: workers.w.count: invalid value 9223372036854775807; expected an integer from 0 to 1000`},
		},
		{
			name:  "a cluster counts at most 2000 nodes",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "workers: {a: {count: 1000}, b: {count: 1000}}\n")}},
			want:  []string{`c.yaml:4:1: workers: the cluster has 2001 nodes (managers and every worker group); at most 2000 nodes per cluster: split it into several clusters`},
		},
		{
			name:  "userData must render without the token",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "userData: '{{.JoinToken}}'\n")}},
			want:  []string{`c.yaml:4:1: userData: the template does not render: userData:1:2: executing "userData" at <.JoinToken>: can't evaluate field JoinToken in type schema.UserData; the template sees .Cluster, .Group, .Role, .Init, .ManagerAddr, .Provider and .Daemon, quotes with {{shq X}}, and writes the join command with {{join "ADVERTISE_ADDR"}}`},
		},
		{
			name: "an alias bomb is refused before it is expanded",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "x0: &x0 [" + strings.Repeat(`"lollollollollol",`, 9) + "]\n" + func() string {
				var b strings.Builder
				for i := 1; i < 10; i++ {
					fmt.Fprintf(&b, "x%d: &x%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*x%d,", i-1), 9), ","))
				}
				return b.String()
			}())}},
			want: []string{`c.yaml:1:1: the file grows past 4194304 bytes once its aliases are expanded; a cluster spec is a few kilobytes: use fewer or smaller aliases`},
		},
		{
			name:  "a spec file is at most 1 MiB",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "#" + strings.Repeat("x", MaxSpecFileBytes))}},
			want:  []string{`c.yaml: the file is 1048628 bytes: a spec file may be at most 1048576; a cluster spec is a few kilobytes: split the file or remove what is not a spec`},
		},
		{
			name:  "no control character in any value; newline and tab only in userData",
			files: []File{{"c.yaml", []byte("name: a\nprovider: {aws: {region: eu-west-1}}\nmanagers: {count: 1, instance: {type: t3.micro, image: \"ami-1\\e[2J\", subnets: [\"s-1\\r\"]}}\nuserData: \"#!/bin/sh\\n\\techo\\n\"\n")}},
			want: []string{
				`c.yaml:3:49: managers.instance.image: a control character in the value; values are names and ids, printed and sent to the cloud: remove it`,
				`c.yaml:3:80: managers.instance.subnets[0]: a control character in the value; values are names and ids, printed and sent to the cloud: remove it`,
			},
		},
		{
			name:  "unknown field without a near match lists the allowed ones",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "safety: {zzz: true}\n")}},
			want:  []string{`c.yaml:4:10: safety.zzz: unknown field "zzz"; allowed fields: maxRemovalsPerApply, allowEmpty, prune`},
		},
		{
			name:  "unknown top-level yaml field",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "worker: {}\n")}},
			want:  []string{`c.yaml:4:1: worker: unknown field "worker"; did you mean workers?`},
		},
		{
			name:  "cue files must share one package",
			files: []File{{"a.cue", []byte("package x\n")}, {"b.cue", []byte("package y\n")}},
			want:  []string{`b.cue:1:1: package name "y" conflicts with previous package name "x"`},
		},
		{
			name:  "cue imports outside the standard library are refused",
			files: []File{{"a.cue", []byte("package x\nimport \"example.com/defaults\"\n")}},
			want:  []string{`a.cue:2:8: import "example.com/defaults" is not supported; spec files may import only CUE's standard library`},
		},
		{
			name: "a typo in a shared cue default is reported where it is written",
			files: []File{
				{"a.cue", []byte("package x\n_base: {managers: cuont: 3}\n")},
				{"b.cue", []byte("package x\nclusters: a: _base & {provider: local: {}, managers: count: 1}\n")},
			},
			want: []string{`a.cue:2:19: clusters.a.managers.cuont: unknown field "cuont"; did you mean count?`},
		},
		{
			name:  "a value that #Cluster rejects inside a cue spec",
			files: []File{{"a.cue", []byte("package x\nclusters: a: #Cluster & {provider: local: {}, managers: count: 4}\n")}},
			want:  []string{`a.cue:2:64: clusters.a.managers.count: invalid value; expected 1, 3, 5 or 7: a raft membership of n managers tolerates (n-1)/2 failures, so an even count adds risk without adding tolerance`},
		},
		{
			name:  "cue clusters must be a map",
			files: []File{{"a.cue", []byte("package x\nclusters: [{provider: local: {}}]\n")}},
			want:  []string{`a.cue:2:1: clusters: conflicting values [{provider:{local:{}}}] and {[string]:(#Cluster & {name:Name})} (mismatched types list and struct)`},
		},
		{
			name:  "unknown provider",
			files: []File{{"a.cue", []byte("package x\nclusters: a: {provider: gcp: {}, managers: count: 1}\n")}},
			want: []string{
				`a.cue:2:15: clusters.a.provider: no provider is set; set exactly one of provider.aws (region) or provider.local (subnet)`,
				`a.cue:2:25: clusters.a.provider.gcp: unknown field "gcp"; allowed fields: aws, local`,
			},
		},
		{
			name:  "list elements are indexed",
			files: []File{{"c.yaml", []byte("name: a\n" + ok + "workers: {w: {count: 1, instance: {subnets: [a, 1]}}}\n")}},
			want:  []string{`c.yaml:4:49: workers.w.instance.subnets[1]: invalid value 1; expected a string: quote it ("1")`},
		},
		{
			name:  "cue reference to an undefined name",
			files: []File{{"a.cue", []byte("package x\nclusters: a: #Clustr & {}\n")}},
			want:  []string{`a.cue:2:14: clusters.a: reference "#Clustr" not found`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.files)
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("Load error = %v; want Diagnostics", err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "no cluster specs found in "+dir+": add a .yaml or .cue file") {
		t.Fatalf("empty dir: err = %v", err)
	}
	write(".hidden.yaml", "not: [valid")
	write("README.md", "# not a spec")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("b.yaml", "name: b\nprovider: {local: {}}\nmanagers: {count: 1}\n")
	write("a.yml", "name: a\nprovider: {local: {}}\nmanagers: {count: 3}\n")
	res, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.yml", "b.yaml"}, res.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if got := []string{res.Clusters[0].Name, res.Clusters[1].Name}; !cmp.Equal(got, []string{"a", "b"}) {
		t.Errorf("clusters = %v", got)
	}
	c, err := res.Cluster("b")
	if err != nil || c.Managers.Count != 1 {
		t.Errorf("Cluster(b) = %+v, %v", c, err)
	}
	if _, err := res.Cluster("c"); err == nil || err.Error() != `cluster "c" is not defined in the specs; defined clusters: a, b` {
		t.Errorf("Cluster(c) error = %v", err)
	}

	// The digest covers names and contents, nothing else.
	d1 := res.Digest
	if !strings.HasPrefix(d1, "sha256:") || len(d1) != len("sha256:")+64 {
		t.Fatalf("digest = %q", d1)
	}
	again, _ := LoadDir(dir)
	write("a.yml", "name: a\nprovider: {local: {}}\nmanagers: {count: 5}\n")
	changed, _ := LoadDir(dir)
	if again.Digest != d1 || changed.Digest == d1 {
		t.Errorf("digest: first %s, same files %s, changed file %s", d1, again.Digest, changed.Digest)
	}
	if digest([]File{{"a", []byte("bc")}}) == digest([]File{{"ab", []byte("c")}}) {
		t.Error("digest does not separate names from contents")
	}
}

func TestParseCron(t *testing.T) {
	for _, expr := range []string{"@every 1m", "@weekly", "0 2 * * SAT", "*/5 * * * *"} {
		if _, err := ParseCron(expr); err != nil {
			t.Errorf("ParseCron(%q): %v", expr, err)
		}
	}
	for _, expr := range []string{"", "* * * * * *", "@fortnightly", "61 * * * *"} {
		if _, err := ParseCron(expr); err == nil {
			t.Errorf("ParseCron(%q) succeeded", expr)
		}
	}
	s, _ := ParseCron("0 2 * * SAT")
	now := time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC) // a Wednesday
	if got, want := s.Next(now), time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next = %v; want %v", got, want)
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"count", "instance", "availability", "labels"}
	for in, want := range map[string]string{"cuont": "count", "Count": "count", "lables": "labels", "instnce": "instance", "zzz": "", "c": "", "base": "", "availabilty": "availability", "lbls": ""} {
		if got := suggest(in, cands); got != want {
			t.Errorf("suggest(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestSource(t *testing.T) {
	if !strings.Contains(Source(), "#Cluster:") || !strings.Contains(Source(), "rotateAfterJoin") {
		t.Error("Source() does not return the schema")
	}
}
