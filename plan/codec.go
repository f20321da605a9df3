package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// Canonical returns a copy of o in canonical order: instances, unowned
// instances and nodes sorted by ID, nil lists made empty. The copy shares
// maps with o.
func (o Observed) Canonical() Observed {
	c := o
	if c.FormatVersion == 0 {
		c.FormatVersion = FormatVersion
	}
	c.Instances = sortedInstances(o.Instances)
	c.Unowned = sortedInstances(o.Unowned)
	if len(c.Unowned) == 0 {
		c.Unowned = nil
	}
	nodes := slices.Clone(o.Swarm.Nodes)
	if nodes == nil {
		nodes = []providers.Node{}
	}
	slices.SortFunc(nodes, func(a, b providers.Node) int { return strings.Compare(a.ID, b.ID) })
	c.Swarm.Nodes = nodes
	return c
}

func sortedInstances(in []providers.Instance) []providers.Instance {
	out := slices.Clone(in)
	if out == nil {
		out = []providers.Instance{}
	}
	slices.SortFunc(out, func(a, b providers.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// MarshalObserved encodes o as stable, indented JSON in canonical order
// (map keys sorted), ending with a newline.
func MarshalObserved(o Observed) ([]byte, error) {
	return marshalIndent(o.Canonical())
}

// UnmarshalObserved decodes an observation written by MarshalObserved (or
// by hand) and returns it in canonical order. Unknown fields are ignored; a
// newer format version is refused.
func UnmarshalObserved(b []byte) (Observed, error) {
	var o Observed
	if err := json.Unmarshal(b, &o); err != nil {
		return Observed{}, fmt.Errorf("failed to decode observation: %w", err)
	}
	if o.FormatVersion > FormatVersion {
		return Observed{}, fmt.Errorf("observation format_version %d is newer than this swarmsync understands (%d): upgrade swarmsync", o.FormatVersion, FormatVersion)
	}
	return o.Canonical(), nil
}

// MarshalPlan encodes p as stable, indented JSON, ending with a newline.
func MarshalPlan(p *Plan) ([]byte, error) { return marshalIndent(p) }

// UnmarshalPlan decodes a plan written by MarshalPlan. Unknown fields are
// ignored; a newer format version is refused.
func UnmarshalPlan(b []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("failed to decode plan: %w", err)
	}
	if p.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("plan format_version %d is newer than this swarmsync understands (%d): upgrade swarmsync", p.FormatVersion, FormatVersion)
	}
	if p.FormatVersion == 0 {
		return nil, fmt.Errorf("failed to decode plan: format_version is missing (is this a plan file?)")
	}
	return &p, nil
}

func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("failed to encode JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// fingerprintInstance is what planning reads from an instance.
type fingerprintInstance struct {
	ID         string                  `json:"id"`
	Cluster    string                  `json:"cluster"`
	Group      string                  `json:"group"`
	Config     string                  `json:"config"`
	State      providers.InstanceState `json:"state"`
	PrivateIP  string                  `json:"private_ip"`
	Zone       string                  `json:"zone"`
	LaunchedAt time.Time               `json:"launched_at"` // joinTimeout and victim age
}

// fingerprintNode is what planning reads from a node. Version, hostname
// and creation time do not drive planning and are left out.
type fingerprintNode struct {
	ID           string                 `json:"id"`
	Role         providers.Role         `json:"role"`
	Availability providers.Availability `json:"availability"`
	State        providers.NodeState    `json:"state"`
	Addr         string                 `json:"addr"`
	ManagerAddr  string                 `json:"manager_addr"`
	Reachability providers.Reachability `json:"reachability"`
	Leader       bool                   `json:"leader"`
	Instance     string                 `json:"instance"`
	Labels       map[string]string      `json:"labels"`
}

// Fingerprint is the sha256 (hex) of everything in o that planning depends
// on, in canonical order. It leaves out TakenAt, node versions, hostnames
// and tags other than the ones planning reads, so two observations of an
// unchanged cluster have the same fingerprint. apply compares it to refuse
// a stale plan.
func (o Observed) Fingerprint() string {
	c := o.Canonical()
	conv := func(in []providers.Instance) []fingerprintInstance {
		out := make([]fingerprintInstance, len(in))
		for i, x := range in {
			out[i] = fingerprintInstance{x.ID, x.Cluster, x.Group, x.Config, x.State, x.PrivateIP, x.Zone, x.LaunchedAt.UTC()}
		}
		return out
	}
	nodes := make([]fingerprintNode, len(c.Swarm.Nodes))
	for i, n := range c.Swarm.Nodes {
		nodes[i] = fingerprintNode{n.ID, n.Role, n.Availability, n.State, n.Addr, n.ManagerAddr, n.Reachability, n.Leader, n.InstanceID(), n.Labels}
	}
	b, err := json.Marshal(struct {
		Version   int                   `json:"v"`
		Cluster   string                `json:"cluster"`
		Active    bool                  `json:"active"`
		Instances []fingerprintInstance `json:"instances"`
		Unowned   []fingerprintInstance `json:"unowned"`
		Nodes     []fingerprintNode     `json:"nodes"`
	}{FormatVersion, c.Cluster, c.Swarm.Active, conv(c.Instances), conv(c.Unowned), nodes})
	if err != nil {
		// Only plain strings, bools, times and string maps: cannot fail.
		panic(fmt.Sprintf("failed to encode fingerprint: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
