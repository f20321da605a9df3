package plan

import (
	"fmt"
	"time"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// FormatVersion is the version of the observation JSON format (and of
// status). Readers ignore unknown fields; a change that breaks readers
// bumps it.
const FormatVersion = 1

// PlanFormatVersion is the version of the plan JSON format. Version 2 added
// the actions on the AWS environment (security group, target groups,
// listeners): a reader of version 1 could not execute them, so it must
// refuse such a plan. Readers ignore unknown fields.
const PlanFormatVersion = 2

// Observed is one snapshot of the world for one cluster: owned instances and
// Swarm nodes, taken once per pass. It is saved by `swarmsync observe` and
// fed back by `plan --observed`.
type Observed struct {
	FormatVersion int    `json:"format_version"`
	Cluster       string `json:"cluster"`
	// TakenAt is when the snapshot was taken. It must not drive the
	// fingerprint; the planner uses it as "now".
	TakenAt   time.Time            `json:"taken_at"`
	Instances []providers.Instance `json:"instances"`
	Swarm     providers.SwarmState `json:"swarm"`
	// Unowned counts instances seen without the cluster tag (never touched).
	Unowned []providers.Instance `json:"unowned,omitempty"`
	// Network is the cloud environment around the machines (aws); nil
	// when it was not observed, and then nothing about it is planned.
	Network *providers.Network `json:"network,omitempty"`
	// Ingress is the Swarm's routing mesh, observed when the spec names a
	// load balancer; nil when not observed, and then no listener is
	// planned.
	Ingress *Ingress `json:"ingress,omitempty"`
}

// Ingress is what the Swarm publishes on every node.
type Ingress struct {
	// Ports are the services' ports published in ingress mode, sorted.
	Ports []providers.PublishedPort `json:"ports"`
}

// Action is what a step does. The values are what users see.
type Action string

// Actions, in the vocabulary of the plan contract.
const (
	ActionLaunch          Action = "launch"
	ActionAwaitJoin       Action = "await-join"
	ActionLabel           Action = "label" // spec labels and availability
	ActionDrain           Action = "drain"
	ActionAwaitDrained    Action = "await-drained"
	ActionDemote          Action = "demote"
	ActionPromote         Action = "promote"
	ActionRemoveNode      Action = "remove-node"
	ActionTerminate       Action = "terminate"
	ActionRotateJoinToken Action = "rotate-join-token"

	// The AWS environment (network.go, targets.go, listeners.go).
	ActionCreateSecurityGroup Action = "create-security-group"
	ActionAuthorizeIngress    Action = "authorize-ingress"
	ActionRegisterTargets     Action = "register-targets"
	ActionDeregisterTargets   Action = "deregister-targets"
	ActionAwaitDeregistered   Action = "await-deregistered"
	ActionCreateListener      Action = "create-listener"
	ActionDeleteListener      Action = "delete-listener"
)

// Source says where the desired spec came from.
type Source struct {
	Repo       string `json:"repo"` // credentials stripped
	Ref        string `json:"ref,omitempty"`
	Commit     string `json:"commit"`
	Path       string `json:"path,omitempty"`
	SpecDigest string `json:"spec_digest"`
}

// ObservationSummary identifies the observation a plan was computed from.
type ObservationSummary struct {
	Fingerprint string    `json:"fingerprint"`
	Instances   int       `json:"instances"` // live ones (not terminated)
	Nodes       int       `json:"nodes"`
	Managers    int       `json:"managers"`
	Leader      string    `json:"leader,omitempty"`
	TakenAt     time.Time `json:"taken_at"`
}

// Plan is the ordered set of steps that brings the observed cluster to the
// desired spec. It is pure data: apply executes it, views render it.
type Plan struct {
	FormatVersion int                `json:"format_version"`
	Cluster       string             `json:"cluster"`
	Source        Source             `json:"source"`
	Desired       schema.Cluster     `json:"desired"`
	Observation   ObservationSummary `json:"observation"`
	// Summary counts steps per action.
	Summary map[Action]int `json:"summary"`
	Steps   []Step         `json:"steps"`
	// Held are the nodes left alone within update.downGrace (they may come
	// back); Notes say the same in words.
	Held []HeldNode `json:"held,omitempty"`
	// LaunchStopped are the groups that launch nothing because their new
	// machines do not join; Notes say the same in words.
	LaunchStopped []LaunchStop `json:"launch_stopped,omitempty"`
	// Notes explain what the plan will not do and why (e.g. lost quorum
	// and the manual recovery it needs).
	Notes []string `json:"notes,omitempty"`
}

// HeldNode is a node that is Down (or a manager that is unreachable) while
// its instance runs, left alone until it has been Down for
// update.downGrace.
type HeldNode struct {
	Node     string `json:"node"`
	Instance string `json:"instance"`
	Group    string `json:"group"`
	// DownSince is when the Swarm marked the node Down; zero when it is
	// not Down (an unreachable manager) or the observation does not say.
	DownSince time.Time `json:"down_since,omitzero"`
	// ReplaceAt is when it is replaced if it is still Down; zero when that
	// is not known yet (DownSince zero).
	ReplaceAt time.Time `json:"replace_at,omitzero"`
}

// Step is one operation. Ordering comes from DependsOn, not slice position.
type Step struct {
	// ID is stable for the same inputs ("launch-managers-1", ...).
	ID     string `json:"id"`
	Action Action `json:"action"`
	Group  string `json:"group"`
	// Instance and Node name the target when it exists already.
	Instance string `json:"instance,omitempty"`
	Node     string `json:"node,omitempty"`
	// LaunchStep names the launch step whose instances this step targets
	// (await-join, label of nodes not yet born).
	LaunchStep string   `json:"launch_step,omitempty"`
	Reason     string   `json:"reason"`
	DependsOn  []string `json:"depends_on,omitempty"`

	// Launch parameters (ActionLaunch).
	Count  int            `json:"count,omitempty"`
	Role   providers.Role `json:"role,omitempty"`
	Config string         `json:"config,omitempty"` // swarmsync:config digest
	// Init marks the launch of the first manager of an empty cluster: its
	// user data initialises the Swarm instead of joining it.
	Init bool `json:"init,omitempty"`

	// Label parameters (ActionLabel): the wanted spec labels and availability.
	// Labels are merged into the node's labels; a key whose value is ""
	// is removed from the node (a label swarmsync wrote earlier that the
	// spec no longer has). NodeLabelManaged records the spec keys written.
	Labels       map[string]string      `json:"labels,omitempty"`
	Availability providers.Availability `json:"availability,omitempty"`

	// Rotate parameters (ActionRotateJoinToken).
	RotateWorker  bool `json:"rotate_worker,omitempty"`
	RotateManager bool `json:"rotate_manager,omitempty"`
	// RecordRotatedAt is the least time apply records on the Swarm as the
	// label providers.SwarmLabelJoinTokensRotated in the same update that
	// rotates: observed.TakenAt (UTC, whole seconds) when
	// schedule.rotateJoinTokens is due, zero otherwise. The provider
	// records no earlier than the creation of every node it lists (see
	// providers.JoinTokenRecorder); both triggers are planned from the
	// label.
	RecordRotatedAt time.Time `json:"record_rotated_at,omitzero"`

	// Batch is the rolling-replacement batch (1-based) a step belongs to;
	// apply waits update.delay and update.monitor between batches. Zero for
	// steps outside a rolling replacement.
	Batch int `json:"batch,omitempty"`
	// Removal marks the step that takes a member out of the cluster for
	// good (counted against safety.maxRemovalsPerApply).
	Removal bool `json:"removal,omitempty"`
	// Ghost marks the remove-node of a node entry no engine ever described
	// (a join that never completed: state unknown or down, no hostname):
	// it ran no task and has no instance, so nothing is drained or
	// terminated first and there is no Down to wait for. Apply re-checks
	// the signature on a fresh observation first and leaves a node that
	// registered after all to the next pass.
	Ghost bool `json:"ghost,omitempty"`

	// TargetGroups are the target group ARNs of register-targets,
	// deregister-targets and await-deregistered (the instance is Instance,
	// or those of LaunchStep).
	TargetGroups []string `json:"target_groups,omitempty"`
	// Rules are the inbound rules authorize-ingress adds to the managed
	// security group (a source group "self" is the group itself).
	Rules []providers.Rule `json:"rules,omitempty"`
	// Listener parameters: create-listener makes a target group named
	// TargetGroupName on Port/Protocol and a listener forwarding to it,
	// and registers Targets (instance ids); delete-listener deletes
	// Listener and its target group TargetGroups[0].
	Port            int      `json:"port,omitempty"`
	Protocol        string   `json:"protocol,omitempty"`
	TargetGroupName string   `json:"target_group_name,omitempty"`
	Targets         []string `json:"targets,omitempty"`
	Listener        string   `json:"listener,omitempty"`
	// VPC is where create-security-group makes the managed group.
	VPC string `json:"vpc,omitempty"`
}

// RefusedError is returned by Compute when the plan would break a blast
// radius rule of the spec. It names the limit, the spec field that sets it
// and what to do.
type RefusedError struct {
	// Limit is the rule that refused the plan ("maxRemovalsPerApply",
	// "allowEmpty").
	Limit string
	// Field is the spec field path that controls the limit
	// ("safety.maxRemovalsPerApply").
	Field string
	// Detail says what the plan would have done and how to proceed.
	Detail string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("plan refused by %s: %s", e.Field, e.Detail)
}
