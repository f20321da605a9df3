package schema

import (
	"encoding/json"
	"fmt"
	"time"
)

// Cluster is one validated cluster spec with every default applied. It is the
// "desired" half of planning. Field names and JSON names follow the spec
// format (schema.cue is the source of truth for ranges and defaults).
type Cluster struct {
	// Name is the cluster name, a DNS label. It is the value of the
	// swarmsync:cluster tag on every owned instance.
	Name     string                 `json:"name"`
	Provider Provider               `json:"provider"`
	Managers Managers               `json:"managers"`
	Workers  map[string]WorkerGroup `json:"workers,omitempty"`
	Update   Update                 `json:"update"`
	Schedule Schedule               `json:"schedule"`
	Safety   Safety                 `json:"safety"`
	// JoinTokens controls how join tokens are handled after nodes join.
	JoinTokens JoinTokens `json:"joinTokens"`
	// UserData is an optional custom user-data template (Go text/template).
	// Empty means the provider's default template.
	UserData string `json:"userData,omitempty"`
	// Daemon, when enabled, is started by the user data of the manager
	// that creates the Swarm. It shapes no machine: it is not part of the
	// config digest.
	Daemon *Daemon `json:"daemon,omitempty"`
	// LoadBalancer (aws) is the load balancer whose listeners follow the
	// ingress-published ports; nil when not set.
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// Pos is where the cluster was defined (file:line:col). It is for
	// diagnostics only and must not drive planning.
	Pos Pos `json:"-"`
}

// Pos is a source position.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.File == "" {
		return ""
	}
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Provider names exactly one cloud.
type Provider struct {
	AWS   *AWSProvider   `json:"aws,omitempty"`
	Local *LocalProvider `json:"local,omitempty"`
}

// Kind returns "aws" or "local".
func (p Provider) Kind() string {
	switch {
	case p.AWS != nil:
		return "aws"
	case p.Local != nil:
		return "local"
	}
	return ""
}

// AWSProvider places the cluster on EC2.
type AWSProvider struct {
	Region string `json:"region"`
	// ManagedSecurityGroup makes swarmsync own one security group per
	// cluster with the rules Swarm needs. It is part of every group's
	// config digest (the group is attached at launch).
	ManagedSecurityGroup bool `json:"managedSecurityGroup,omitempty"`
}

// LoadBalancer is an ELBv2 load balancer whose listeners follow the
// Swarm's ingress-published ports; their target groups hold the nodes of
// worker group Group.
type LoadBalancer struct {
	ARN   string `json:"arn"`
	Group string `json:"group"`
}

// LocalProvider places the cluster on this Linux host: each instance is a
// dockerd in its own network namespace with an address in Subnet.
type LocalProvider struct {
	Subnet string `json:"subnet"`
}

// Managers is the manager group. Count is 1, 3, 5 or 7.
type Managers struct {
	Count        int               `json:"count"`
	Instance     Instance          `json:"instance"`
	Availability string            `json:"availability"`
	Labels       map[string]string `json:"labels,omitempty"`
	// TargetGroups are ELBv2 target group ARNs the group's nodes are
	// registered in.
	TargetGroups []string `json:"targetGroups,omitempty"`
}

// WorkerGroup is one named group of workers.
type WorkerGroup struct {
	Count        int               `json:"count"`
	Instance     Instance          `json:"instance"`
	Availability string            `json:"availability"`
	Labels       map[string]string `json:"labels,omitempty"`
	// TargetGroups are ELBv2 target group ARNs the group's nodes are
	// registered in.
	TargetGroups []string `json:"targetGroups,omitempty"`
}

// Instance says how a machine of a group is launched.
type Instance struct {
	Type            string   `json:"type,omitempty"`
	Image           string   `json:"image,omitempty"`
	Subnets         []string `json:"subnets,omitempty"`
	SecurityGroups  []string `json:"securityGroups,omitempty"`
	InstanceProfile string   `json:"instanceProfile,omitempty"`
	KeyName         string   `json:"keyName,omitempty"`
}

// Update is the rolling-update policy.
type Update struct {
	Parallelism   int      `json:"parallelism"`
	MaxSurge      int      `json:"maxSurge"`
	Delay         Duration `json:"delay"`
	Monitor       Duration `json:"monitor"`
	FailureAction string   `json:"failureAction"` // pause | continue
	JoinTimeout   Duration `json:"joinTimeout"`
	DrainTimeout  Duration `json:"drainTimeout"`
	DownGrace     Duration `json:"downGrace"`
}

// Schedule holds cron expressions (robfig/cron syntax, descriptors allowed).
type Schedule struct {
	Reconcile         string   `json:"reconcile"`
	RotateJoinTokens  string   `json:"rotateJoinTokens,omitempty"`
	DisruptionWindows []Window `json:"disruptionWindows,omitempty"`
}

// Window is a disruption window: it opens at each Cron time and lasts Duration.
type Window struct {
	Cron     string   `json:"cron"`
	Duration Duration `json:"duration"`
}

// Safety bounds what one apply may do.
type Safety struct {
	MaxRemovalsPerApply int  `json:"maxRemovalsPerApply"`
	AllowEmpty          bool `json:"allowEmpty"`
	Prune               bool `json:"prune"`
}

// Daemon is swarmsync's reconciler started as a global service on the
// managers by the first manager's user data.
type Daemon struct {
	Enabled bool   `json:"enabled"`
	Image   string `json:"image"`
	Repo    string `json:"repo"`
	Ref     string `json:"ref,omitempty"`
	Path    string `json:"path,omitempty"`
	Port    int    `json:"port"`
}

// JoinTokens says whether the join token used by newly joined nodes is
// rotated once they have joined (default true).
type JoinTokens struct {
	RotateAfterJoin bool `json:"rotateAfterJoin"`
}

// Group names used in tags and node labels.
const ManagersGroup = "managers"

// WorkerGroupName returns the group name for worker group g ("workers/g").
func WorkerGroupName(g string) string { return "workers/" + g }

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}
