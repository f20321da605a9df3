package providers

import (
	"context"
	"errors"
	"time"
)

// Tag and name conventions of the resources swarmsync creates around a
// cluster (besides instances). The cluster tag is written at creation.
const (
	// TagManaged says what a created resource is for: "security-group" on
	// the managed security group, "listener" on a listener and its target
	// group.
	TagManaged = "swarmsync:managed"
	// TagPort is the published port a listener and its target group are for.
	TagPort = "swarmsync:port"
)

// Network is the cloud environment around a cluster's machines in one
// observation: the subnets and security groups the spec names, the
// cluster's own security group, the target groups the spec names and the
// load balancer with its listeners. Lists are sorted by id.
type Network struct {
	Subnets        []Subnet        `json:"subnets,omitempty"`
	SecurityGroups []SecurityGroup `json:"security_groups,omitempty"`
	TargetGroups   []TargetGroup   `json:"target_groups,omitempty"`
	LoadBalancer   *LoadBalancer   `json:"load_balancer,omitempty"`
}

// Subnet is one subnet as the cloud reports it.
type Subnet struct {
	ID   string `json:"id"`
	Zone string `json:"zone"`
	VPC  string `json:"vpc"`
	CIDR string `json:"cidr"`
}

// SecurityGroup is one security group and its inbound rules.
type SecurityGroup struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	VPC     string            `json:"vpc"`
	Tags    map[string]string `json:"tags,omitempty"`
	Ingress []Rule            `json:"ingress,omitempty"`
}

// Rule is one inbound permission: a protocol ("tcp", "udp" or "-1" for
// all) and port range from one source, a security group or an IPv4 CIDR.
type Rule struct {
	Protocol    string `json:"protocol"`
	FromPort    int    `json:"from_port"`
	ToPort      int    `json:"to_port"`
	SourceGroup string `json:"source_group,omitempty"`
	CIDR        string `json:"cidr,omitempty"`
}

// TargetGroup is one ELBv2 target group with its registered targets.
type TargetGroup struct {
	ARN      string            `json:"arn"`
	Name     string            `json:"name"`
	Protocol string            `json:"protocol,omitempty"`
	Port     int               `json:"port,omitempty"`
	VPC      string            `json:"vpc,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	Targets  []Target          `json:"targets,omitempty"`
}

// Target is one registered target (an instance id) and its health state
// ("initial", "healthy", "unhealthy", "unused", "draining", "unavailable").
type Target struct {
	ID    string `json:"id"`
	Port  int    `json:"port,omitempty"`
	State string `json:"state"`
}

// TargetDraining is the state of a target being deregistered.
const TargetDraining = "draining"

// Registered reports whether the target still takes new traffic (it is
// registered and not being deregistered).
func (t Target) Registered() bool { return t.State != TargetDraining }

// LoadBalancer is an ELBv2 load balancer and its listeners.
type LoadBalancer struct {
	ARN       string     `json:"arn"`
	VPC       string     `json:"vpc,omitempty"`
	Listeners []Listener `json:"listeners,omitempty"`
}

// Listener is one listener of a load balancer. TargetGroup is the target
// group its default action forwards to ("" when it does something else).
type Listener struct {
	ARN         string            `json:"arn"`
	Protocol    string            `json:"protocol"`
	Port        int               `json:"port"`
	TargetGroup string            `json:"target_group,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// NetworkQuery says what to observe. Empty fields are not observed.
type NetworkQuery struct {
	Cluster        string
	Subnets        []string
	SecurityGroups []string
	// OwnedSecurityGroups asks for the security groups tagged with the
	// cluster (the managed one).
	OwnedSecurityGroups bool
	TargetGroups        []string
	LoadBalancer        string
}

// NetworkObserver is implemented by a Cloud that can observe the network
// around its machines (providers/aws does). It is separate from Cloud so
// that clouds without one (local) keep compiling.
type NetworkObserver interface {
	// Network observes what q names with one filtered call per resource
	// kind, one target health call per target group, and one listener
	// call per load balancer. Resources that do not exist are absent from
	// the result (not an error).
	Network(ctx context.Context, q NetworkQuery) (Network, error)
}

// PublishedPort is a service port published in the Swarm's ingress mode.
type PublishedPort struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // tcp | udp | sctp
	Service  string `json:"service"`
}

// PortObserver is implemented by a Swarm that can list its services'
// ingress-published ports (providers/docker does).
type PortObserver interface {
	// PublishedPorts lists every port published in ingress mode, sorted by
	// protocol and port, with one service list call.
	PublishedPorts(ctx context.Context) ([]PublishedPort, error)
}

// ListenerRequest asks for a listener on a load balancer and its target
// group, both tagged with the cluster (TagCluster, TagManaged=listener,
// TagPort) at creation.
type ListenerRequest struct {
	Cluster      string
	LoadBalancer string // ARN
	// TargetGroupName is the name of the target group to create (ELBv2
	// treats a create with the same name and settings as the same group).
	TargetGroupName string
	Protocol        string // TCP | UDP
	Port            int
	// Targets are instance ids registered in the new target group.
	Targets []string
}

// Environment changes the network around a cluster (providers/aws does).
// Every change is limited to what the cluster owns (tagged with it), or
// to target groups the spec names.
type Environment interface {
	// ManagedSecurityGroup returns the id of the cluster's managed
	// security group ("" when there is none).
	ManagedSecurityGroup(ctx context.Context, cluster string) (string, error)
	// CreateManagedSecurityGroup creates the cluster's managed security
	// group named name in vpc, tagged at creation, and returns its id; when
	// it exists already it returns the existing one's.
	CreateManagedSecurityGroup(ctx context.Context, cluster, name, vpc string) (string, error)
	// AuthorizeIngress adds inbound rules to the cluster's managed
	// security group; rules it has already are not an error.
	AuthorizeIngress(ctx context.Context, cluster string, rules []Rule) error
	// DeleteManagedSecurityGroup deletes the cluster's managed security
	// group, if any.
	DeleteManagedSecurityGroup(ctx context.Context, cluster string) error
	// RegisterTargets registers instances in a target group.
	RegisterTargets(ctx context.Context, targetGroup string, ids []string) error
	// DeregisterTargets deregisters instances from a target group.
	DeregisterTargets(ctx context.Context, targetGroup string, ids []string) error
	// DeregistrationDelay is the target group's deregistration delay.
	DeregistrationDelay(ctx context.Context, targetGroup string) (time.Duration, error)
	// Targets returns the target group's targets and their states.
	Targets(ctx context.Context, targetGroup string) ([]Target, error)
	// CreateListener creates a target group and a listener forwarding to
	// it, and registers the request's targets.
	CreateListener(ctx context.Context, req ListenerRequest) error
	// DeleteListener deletes a listener the cluster created and then its
	// target group; it refuses a listener not tagged with the cluster.
	DeleteListener(ctx context.Context, cluster, listener, targetGroup string) error
	// OwnedListeners returns the listeners of a load balancer the cluster
	// created.
	OwnedListeners(ctx context.Context, cluster, loadBalancer string) ([]Listener, error)
}

// ErrInUse is returned (wrapped) when a resource cannot be deleted yet
// because something still uses it (an instance shutting down).
var ErrInUse = errors.New("still in use")
