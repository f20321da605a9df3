package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/swarmsync/swarmsync/schema"
)

var initTemplate = template.Must(template.New("spec").Funcs(template.FuncMap{
	"y":    yamlScalar,
	"list": yamlList,
	"dur":  shortDuration,
}).Parse(`# yaml-language-server: $schema=./` + schemaFileName + `
#
# A swarmsync cluster spec: one cluster per YAML document. Every setting is
# spelt out at its default; 'swarmsync schema' documents each field.
#   swarmsync validate   checks it
#   swarmsync plan       shows what would change (run it in CI)
#   swarmsync apply      makes it so, one step at a time, through the Swarm leader

# The cluster's name, a DNS label: it tags every instance swarmsync owns.
name: {{y .O.Name}}

provider:
{{- if eq .O.Provider "aws"}}
  aws:
    region: {{y .O.Region}}
{{- else}}
  # Every machine is a dockerd in its own network namespace on this host.
  local:
    # The host bridge's network (IPv4, /16 to /28): one address per machine.
    subnet: {{y .Subnet}}
{{- end}}

# Managers run the Swarm's control plane (raft): 1, 3, 5 or 7. n managers
# tolerate (n-1)/2 failures; swarmsync changes them one at a time.
managers:
  count: {{.O.Managers}}
{{- if eq .O.Provider "aws"}}
  instance:
    type: {{y .O.ManagerType}}
    image: {{y .O.Image}}
    # One subnet per availability zone; managers spread across them.
    subnets: {{list .O.Subnets}}
    {{if .O.SecurityGroups}}securityGroups: {{list .O.SecurityGroups}}{{else}}# securityGroups: [sg-0123456789abcdef0]{{end}}
    {{if .O.InstanceProfile}}instanceProfile: {{y .O.InstanceProfile}}{{else}}# instanceProfile: swarm-node{{end}}
    {{if .O.KeyName}}keyName: {{y .O.KeyName}}{{else}}# keyName: ops{{end}}
{{- end}}
  # drain: managers run no workload (recommended); or active, pause.
  availability: {{y .Defaults.Managers.Availability}}
  # labels: {role: control}

# Worker groups, by name (a DNS label). Add groups beside this one; a count
# of 0 keeps a group without nodes.
workers:
  {{y .O.Group}}:
    count: {{.O.Workers}}
{{- if eq .O.Provider "aws"}}
    instance:
      type: {{y .O.WorkerType}}
      image: {{y .O.Image}}
      subnets: {{list .O.Subnets}}
      {{if .O.SecurityGroups}}securityGroups: {{list .O.SecurityGroups}}{{else}}# securityGroups: [sg-0123456789abcdef0]{{end}}
      {{if .O.InstanceProfile}}instanceProfile: {{y .O.InstanceProfile}}{{else}}# instanceProfile: swarm-node{{end}}
{{- end}}
    availability: {{y .Group.Availability}}
    # Node labels, for placement constraints (node.labels.tier == web).
    # Keys starting with swarmsync. are reserved.
    labels:
      tier: {{y .O.Group}}

# Replacing out-of-date machines (a changed image or type): how many at once,
# how many extra during a replacement, the pause and watch between batches,
# and what to do when one fails (pause or continue).
update:
  parallelism: {{.Defaults.Update.Parallelism}}
  maxSurge: {{.Defaults.Update.MaxSurge}}
  delay: {{dur .Defaults.Update.Delay.Duration}}
  monitor: {{dur .Defaults.Update.Monitor.Duration}}
  failureAction: {{y .Defaults.Update.FailureAction}}
  # A machine whose node has not joined by then is replaced.
  joinTimeout: {{dur .Defaults.Update.JoinTimeout.Duration}}
  # How long a draining node's tasks may take to move elsewhere.
  drainTimeout: {{dur .Defaults.Update.DrainTimeout.Duration}}
  # A machine whose node is Down while it still runs is left alone this long
  # (a reboot, a dockerd restart), then replaced.
  downGrace: {{dur .Defaults.Update.DownGrace.Duration}}

schedule:
  # How often 'apply --auto' (on the managers) runs a pass: cron or @every.
  reconcile: {{y .Defaults.Schedule.Reconcile}}
  # Rotate both join tokens on a schedule:
  # rotateJoinTokens: "@weekly"
  # Run disruptive steps (drain, replace, remove) only inside these windows:
  # disruptionWindows:
  #   - cron: "0 2 * * SAT"
  #     duration: 4h

# What one apply may do at most.
safety:
  maxRemovalsPerApply: {{.Defaults.Safety.MaxRemovalsPerApply}}
  # Allow a plan that empties a group with running nodes.
  allowEmpty: {{.Defaults.Safety.AllowEmpty}}
  # Allow removing the instances of worker groups no longer in the spec.
  prune: {{.Defaults.Safety.Prune}}

# Rotate the join token once new nodes have joined.
joinTokens:
  rotateAfterJoin: {{.Defaults.JoinTokens.RotateAfterJoin}}
`))

// renderInitSpec renders the starting spec for o.
func renderInitSpec(o *initOptions) ([]byte, error) {
	defaults, err := initDefaults(o)
	if err != nil {
		return nil, err
	}
	d := initTemplateData{
		O: initTemplateOptions{
			Name: o.name, Provider: o.provider, Managers: o.managers, Workers: o.workers, Group: o.group,
			Region: o.region, Subnets: o.subnets, Image: o.image, ManagerType: o.managerType, WorkerType: o.workerType,
			SecurityGroups: o.securityGroups, InstanceProfile: o.instanceProfile, KeyName: o.keyName,
		},
		Defaults: defaults,
		Group:    defaults.Workers[o.group],
	}
	if defaults.Provider.Local != nil {
		d.Subnet = defaults.Provider.Local.Subnet
	}
	var b bytes.Buffer
	if err := initTemplate.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("failed to render the spec: %w", err)
	}
	return b.Bytes(), nil
}

// initTemplateData is what the starting spec template renders: the flags,
// and the schema's defaults for everything the flags do not set (read from
// the schema, so the spelt-out defaults never drift from it).
type initTemplateData struct {
	O        initTemplateOptions
	Defaults schema.Cluster
	Group    schema.WorkerGroup // the first worker group, with its defaults
	Subnet   string             // local: the bridge network
}

type initTemplateOptions struct {
	Name, Provider, Group                                   string
	Managers, Workers                                       int
	Region, Image, ManagerType, WorkerType, InstanceProfile string
	KeyName                                                 string
	Subnets, SecurityGroups                                 []string
}

// initDefaults loads the smallest spec the flags make, so that the schema
// fills in every default. A problem there is the flags' problem.
func initDefaults(o *initOptions) (schema.Cluster, error) {
	provider := "{local: {}}"
	if o.subnet != "" {
		provider = "{local: {subnet: " + yamlScalar(o.subnet) + "}}"
	}
	if o.provider == "aws" {
		provider = "{aws: {region: " + yamlScalar(o.region) + "}}"
	}
	minst, winst := "", ""
	if o.provider == "aws" {
		minst = fmt.Sprintf(", instance: {type: %s, image: %s, subnets: %s}", yamlScalar(o.managerType), yamlScalar(o.image), yamlList(o.subnets))
		winst = fmt.Sprintf(", instance: {type: %s, image: %s, subnets: %s}", yamlScalar(o.workerType), yamlScalar(o.image), yamlList(o.subnets))
	}
	minimal := fmt.Sprintf("name: %s\nprovider: %s\nmanagers: {count: %d%s}\nworkers: {%s: {count: %d%s}}\n",
		yamlScalar(o.name), provider, o.managers, minst, yamlScalar(o.group), o.workers, winst)
	res, err := schema.Load([]schema.File{{Name: o.name + ".yaml", Data: []byte(minimal)}})
	var ds schema.Diagnostics
	if errors.As(err, &ds) {
		// Only the rules of the smallest spec can fail here (aws
		// instances come later): report them by flag.
		return schema.Cluster{}, initFlagError(ds)
	}
	if err != nil {
		return schema.Cluster{}, err
	}
	return res.Clusters[0], nil
}

// initFlagError says which flags are wrong, from the diagnostics of the
// smallest spec.
func initFlagError(ds schema.Diagnostics) error {
	flagOf := map[string]string{
		"name": "--name", "managers.count": "--managers", "provider.local.subnet": "--subnet",
		"provider.aws.region": "--region", "managers.instance.type": "--manager-type",
		"managers.instance.image": "--image", "managers.instance.subnets": "--subnets",
	}
	var msgs []string
	for _, d := range ds {
		f := flagOf[d.Path]
		if f == "" && strings.HasPrefix(d.Path, "workers.") {
			switch {
			case strings.HasSuffix(d.Path, ".count"):
				f = "--workers"
			case strings.HasSuffix(d.Path, ".instance.type"):
				f = "--worker-type"
			case strings.HasSuffix(d.Path, ".instance.image"):
				f = "--image"
			case strings.HasSuffix(d.Path, ".instance.subnets") || strings.Contains(d.Path, ".instance.subnets["):
				f = "--subnets"
			default:
				f = "--group"
			}
		}
		if f == "" && strings.HasPrefix(d.Path, "managers.instance.subnets[") {
			f = "--subnets"
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		if f != "" {
			msg = f + ": " + msg
		}
		msgs = append(msgs, msg)
	}
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = errors.New(m)
	}
	return errors.Join(errs...)
}

// plainScalar is a YAML scalar that needs no quotes, unless it reads as a
// number (numberLike).
var (
	plainScalar = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	numberLike  = regexp.MustCompile(`^([0-9._-]+|0[xXoObB].*|[0-9][0-9.]*[eE][-+]?[0-9]+|\.?(inf|Inf|INF|nan|NaN|NAN))$`)
)

// yamlScalar writes s as a YAML scalar: plain when that reads back as the
// same string, double-quoted (JSON escapes) otherwise.
func yamlScalar(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~":
		return fmt.Sprintf("%q", s)
	}
	if plainScalar.MatchString(s) && !numberLike.MatchString(s) {
		return s
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// yamlList writes a flow sequence of scalars.
func yamlList(xs []string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = yamlScalar(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// shortDuration writes d as the schema writes durations: 30s, 5m, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// renderInitDone says what init wrote and what to do next.
func renderInitDone(w io.Writer, o *initOptions, files []initFile) {
	for _, f := range files {
		what := "the cluster spec"
		if f.name == schemaFileName {
			what = "the JSON Schema editors use (see the first line of the spec)"
		}
		verb := "Wrote"
		if f.present {
			verb = "Kept"
		}
		fmt.Fprintf(w, "%s %s: %s\n", verb, displayPath(o.dir, f.name), what)
	}
	repo := ""
	if o.dir != "." {
		repo = " --repo " + o.dir
	}
	fmt.Fprintf(w, "\nNext:\n  swarmsync validate%s\n  swarmsync plan%s\n", repo, repo)
	if o.provider == "local" {
		fmt.Fprintf(w, "  swarmsync apply%s   (as root: starts the machines on this host)\n", repo)
	}
}

// displayPath joins dir and name for messages, without a leading "./".
func displayPath(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return strings.TrimSuffix(dir, "/") + "/" + name
}
