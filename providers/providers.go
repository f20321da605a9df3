package providers

import (
	"context"
	"errors"
	"time"
)

// Tag keys written at launch (TagSpecifications, never later).
const (
	TagCluster = "swarmsync:cluster"
	TagGroup   = "swarmsync:group"
	TagConfig  = "swarmsync:config"
	TagName    = "Name"
)

// Label keys.
const (
	// EngineLabelInstance is the engine label (dockerd --label) that links a
	// node to its instance. It is set by user data.
	EngineLabelInstance = "swarmsync.instance"
	// NodeLabelGroup is the node spec label written after join.
	NodeLabelGroup = "swarmsync.group"
	// SwarmLabelJoinTokensRotated is the swarm spec label on which the
	// last rotation of both join tokens is recorded, as an RFC 3339 UTC
	// time: both tokens were rotated no earlier than that time, and no
	// earlier than the creation of every node listed when they were (so
	// a node created later may hold a token that was never rotated). It
	// is written in the same update that rotates, and it is what
	// schedule.rotateJoinTokens and joinTokens.rotateAfterJoin are planned
	// from (no state file).
	SwarmLabelJoinTokensRotated = "swarmsync.join-tokens-rotated"
)

// InstanceState is the cloud's lifecycle state of an instance.
type InstanceState string

// Instance states (EC2 names; the local provider uses the same).
const (
	StatePending      InstanceState = "pending"
	StateRunning      InstanceState = "running"
	StateShuttingDown InstanceState = "shutting-down"
	StateTerminated   InstanceState = "terminated"
	StateStopping     InstanceState = "stopping"
	StateStopped      InstanceState = "stopped"
)

// Live reports whether the instance counts as existing (not going away).
func (s InstanceState) Live() bool {
	return s == StatePending || s == StateRunning || s == StateStopping || s == StateStopped
}

// Instance is one machine as the cloud reports it.
type Instance struct {
	ID         string            `json:"id"`
	Cluster    string            `json:"cluster"`
	Group      string            `json:"group"`  // "managers" or "workers/<name>"
	Config     string            `json:"config"` // swarmsync:config tag
	State      InstanceState     `json:"state"`
	PrivateIP  string            `json:"private_ip,omitempty"`
	Zone       string            `json:"zone,omitempty"`
	LaunchedAt time.Time         `json:"launched_at"`
	Tags       map[string]string `json:"tags,omitempty"`
}

// LaunchRequest asks the cloud for Count machines of one group.
// UserData is secret (it carries a join token): implementations must never
// log it, return it in errors, or store it anywhere readable by others.
type LaunchRequest struct {
	Cluster         string
	Group           string
	Count           int
	Image           string
	InstanceType    string
	Subnets         []string // spread the machines across these
	SecurityGroups  []string
	InstanceProfile string
	KeyName         string
	// Tags are applied at launch, and include TagCluster/TagGroup/TagConfig/TagName.
	Tags     map[string]string
	UserData []byte
	// IdempotencyToken is deterministic per plan step: launching twice with
	// the same token and request returns the same instances.
	IdempotencyToken string
}

// ErrTokenReused is returned (wrapped) by Cloud.Launch when the
// idempotency token was already used for a launch with other parameters.
var ErrTokenReused = errors.New("idempotency token reused with different launch parameters")

// Cloud is what plan/apply need from an infrastructure provider.
type Cloud interface {
	// Instances lists the live and recently terminated instances that carry
	// TagCluster=cluster. Untagged instances are never returned.
	Instances(ctx context.Context, cluster string) ([]Instance, error)
	// Launch starts machines and returns them (possibly still pending).
	Launch(ctx context.Context, req LaunchRequest) ([]Instance, error)
	// Terminate ends the given instances; it refuses ids that do not carry
	// TagCluster=cluster.
	Terminate(ctx context.Context, cluster string, ids []string) error
}

// Role of a Swarm node.
type Role string

// Roles.
const (
	RoleManager Role = "manager"
	RoleWorker  Role = "worker"
)

// Availability of a Swarm node.
type Availability string

// Availabilities.
const (
	AvailabilityActive Availability = "active"
	AvailabilityPause  Availability = "pause"
	AvailabilityDrain  Availability = "drain"
)

// NodeState is the Swarm's view of a node's health.
type NodeState string

// Node states (Swarm names).
const (
	NodeReady        NodeState = "ready"
	NodeDown         NodeState = "down"
	NodeUnknown      NodeState = "unknown"
	NodeDisconnected NodeState = "disconnected"
)

// Reachability of a manager in the raft membership.
type Reachability string

// Reachabilities.
const (
	Reachable    Reachability = "reachable"
	Unreachable  Reachability = "unreachable"
	ReachUnknown Reachability = "unknown"
)

// Node is one Swarm node as the Swarm reports it.
type Node struct {
	ID           string       `json:"id"`
	Hostname     string       `json:"hostname"`
	Role         Role         `json:"role"`
	Availability Availability `json:"availability"`
	State        NodeState    `json:"state"`
	Addr         string       `json:"addr,omitempty"` // Status.Addr
	// Manager fields are set only while the node is a manager.
	ManagerAddr  string            `json:"manager_addr,omitempty"`
	Reachability Reachability      `json:"reachability,omitempty"`
	Leader       bool              `json:"leader,omitempty"`
	EngineLabels map[string]string `json:"engine_labels,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Version      uint64            `json:"version"`
	CreatedAt    time.Time         `json:"created_at"`
	// DownSince is when the Swarm marked the node Down (the node object's
	// update time while its state is down); zero when the node is not
	// Down or the observation does not say. Any later update of the node
	// (a label, its availability) moves it later, never earlier.
	DownSince time.Time `json:"down_since,omitzero"`
}

// InstanceID returns the engine label that links the node to its instance.
func (n Node) InstanceID() string { return n.EngineLabels[EngineLabelInstance] }

// SwarmState is the endpoint's view of the Swarm in one observation.
type SwarmState struct {
	// Active is false when the endpoint's engine is not part of a swarm.
	Active bool `json:"active"`
	// SelfID is the node ID of the endpoint's own engine.
	SelfID string `json:"self_id,omitempty"`
	// SelfIsLeader reports whether the endpoint's node is the raft leader.
	SelfIsLeader bool `json:"self_is_leader"`
	// LeaderAddr is the leader's manager address, when known.
	LeaderAddr string `json:"leader_addr,omitempty"`
	Nodes      []Node `json:"nodes"`
	// Labels are the swarm's own spec labels (not a node's), e.g.
	// SwarmLabelJoinTokensRotated. Never a join token.
	Labels map[string]string `json:"labels,omitempty"`
	// CreatedAt is when the swarm was created (its join tokens are no
	// older); zero when unknown.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// JoinTokensRotated returns the time recorded in SwarmLabelJoinTokensRotated
// and whether a valid one is recorded (absent or unparsable: false).
func (s SwarmState) JoinTokensRotated() (time.Time, bool) {
	return ParseRotated(s.Labels[SwarmLabelJoinTokensRotated])
}

// JoinTokensSince returns a time the join tokens are known to be no older
// than: the recorded rotation, else the swarm's creation; ok is false when
// neither is known.
func (s SwarmState) JoinTokensSince() (t time.Time, ok bool) {
	if t, ok := s.JoinTokensRotated(); ok {
		return t, true
	}
	if !s.CreatedAt.IsZero() {
		return s.CreatedAt.UTC(), true
	}
	return time.Time{}, false
}

// ParseRotated parses a value of SwarmLabelJoinTokensRotated; ok is false
// for "" or a value that is not RFC 3339.
func ParseRotated(v string) (t time.Time, ok bool) {
	if v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// FormatRotated formats t as a value of SwarmLabelJoinTokensRotated:
// RFC 3339, UTC, with fractional seconds only when t has them (a node's
// creation time has them; a whole second is written as before).
func FormatRotated(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// JoinTokenRotation asks for a join-token rotation.
type JoinTokenRotation struct {
	Worker, Manager bool
	// RecordAt is a lower bound of the time to record (the planner's
	// "now" when schedule.rotateJoinTokens was due; may be zero). See
	// JoinTokenRecorder for what is written.
	RecordAt time.Time
}

// JoinTokenRecorder is implemented by a Swarm that can record a rotation
// on the Swarm itself (providers/docker does). It is separate from Swarm so
// that Swarm implementations without it keep compiling; apply refuses a
// step that asks to record a rotation through a Swarm without it.
type JoinTokenRecorder interface {
	// RotateAndRecord rotates the tokens r names and, in the same Swarm
	// update, records as SwarmLabelJoinTokensRotated the latest of:
	// r.RecordAt, the latest CreatedAt of the nodes it lists in the same
	// call (the manager's clock: so no node that joined before the
	// rotation looks newer than it, whatever the caller's clock says), and
	// the time already recorded (the record never moves back). It retries
	// "update out of sequence".
	RotateAndRecord(ctx context.Context, r JoinTokenRotation) error
}

// JoinTokens are secret. Never log, print, or put them in an error.
type JoinTokens struct {
	Worker  string
	Manager string
}

// String keeps tokens out of accidental %v formatting.
func (JoinTokens) String() string { return "JoinTokens{redacted}" }

// NodeChange is a partial update; nil fields are left as they are.
type NodeChange struct {
	Availability *Availability
	Role         *Role
	// Labels, when non-nil, are merged into the node's spec labels
	// (a value of "" removes the key).
	Labels map[string]string
}

// ErrNodeNotFound: the Swarm knows no such node (or other object); test
// with errors.Is.
var ErrNodeNotFound = errors.New("not found in the swarm")

// Swarm is what plan/apply need from the Swarm, through one endpoint.
type Swarm interface {
	// Observe returns the endpoint's view: every node and leadership, at a
	// constant number of API calls.
	Observe(ctx context.Context) (SwarmState, error)
	// IsLeader reports whether the endpoint's node is the leader now. Any
	// error means "not leader" to callers.
	IsLeader(ctx context.Context) (bool, error)
	JoinTokens(ctx context.Context) (JoinTokens, error)
	RotateJoinTokens(ctx context.Context, worker, manager bool) error
	// UpdateNode applies change, retrying "update out of sequence".
	UpdateNode(ctx context.Context, nodeID string, change NodeChange) error
	// Demote demotes a manager and waits until it is a worker.
	Demote(ctx context.Context, nodeID string) error
	// Promote promotes a worker and waits until it is a reachable manager.
	Promote(ctx context.Context, nodeID string) error
	// WaitDrained waits until no task on the node is desired running or
	// still running. The caller bounds it with ctx.
	WaitDrained(ctx context.Context, nodeID string) error
	// RemoveNode removes a node from the swarm (force for a Ready node).
	// A node the Swarm does not know fails with ErrNodeNotFound.
	RemoveNode(ctx context.Context, nodeID string, force bool) error
}
