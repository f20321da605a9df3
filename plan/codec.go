package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
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
	if o.Network != nil {
		n := canonicalNetwork(*o.Network)
		c.Network = &n
	}
	if o.Ingress != nil {
		ports := slices.Clone(o.Ingress.Ports)
		if ports == nil {
			ports = []providers.PublishedPort{}
		}
		slices.SortFunc(ports, func(a, b providers.PublishedPort) int {
			if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
				return c
			}
			return a.Port - b.Port
		})
		c.Ingress = &Ingress{Ports: ports}
	}
	return c
}

// canonicalNetwork returns a copy of n with every list sorted by id.
func canonicalNetwork(n providers.Network) providers.Network {
	n.Subnets = slices.Clone(n.Subnets)
	slices.SortFunc(n.Subnets, func(a, b providers.Subnet) int { return strings.Compare(a.ID, b.ID) })
	n.SecurityGroups = slices.Clone(n.SecurityGroups)
	slices.SortFunc(n.SecurityGroups, func(a, b providers.SecurityGroup) int { return strings.Compare(a.ID, b.ID) })
	n.TargetGroups = slices.Clone(n.TargetGroups)
	for i := range n.TargetGroups {
		n.TargetGroups[i].Targets = slices.Clone(n.TargetGroups[i].Targets)
		slices.SortFunc(n.TargetGroups[i].Targets, func(a, b providers.Target) int { return strings.Compare(a.ID, b.ID) })
	}
	slices.SortFunc(n.TargetGroups, func(a, b providers.TargetGroup) int { return strings.Compare(a.ARN, b.ARN) })
	if n.LoadBalancer != nil {
		lb := *n.LoadBalancer
		lb.Listeners = slices.Clone(lb.Listeners)
		slices.SortFunc(lb.Listeners, func(a, b providers.Listener) int { return strings.Compare(a.ARN, b.ARN) })
		n.LoadBalancer = &lb
	}
	return n
}

// networkKey is what planning depends on in a canonical network: all of
// it except the health of targets, of which only "registered or being
// deregistered" counts (health changes by itself between passes).
func networkKey(n providers.Network) string {
	n.TargetGroups = slices.Clone(n.TargetGroups)
	for i := range n.TargetGroups {
		ts := slices.Clone(n.TargetGroups[i].Targets)
		for j := range ts {
			if ts[j].Registered() {
				ts[j].State = "registered"
			}
		}
		n.TargetGroups[i].Targets = ts
	}
	b, err := json.Marshal(n)
	if err != nil {
		panic("failed to encode network: " + err.Error()) // plain values only
	}
	return string(b)
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
// by hand), checks it and returns it in canonical order. Unknown fields are
// ignored; a newer format version is refused; so is an observation with
// duplicate or missing ids or values no provider writes (every problem
// named, one per line, with its JSON path).
func UnmarshalObserved(b []byte) (Observed, error) {
	var o Observed
	if err := json.Unmarshal(b, &o); err != nil {
		return Observed{}, fmt.Errorf("failed to decode observation: %w", err)
	}
	if o.FormatVersion > FormatVersion {
		return Observed{}, fmt.Errorf("observation format_version %d is newer than this swarmsync understands (%d): upgrade swarmsync", o.FormatVersion, FormatVersion)
	}
	if err := o.check(); err != nil {
		return Observed{}, err
	}
	return o.Canonical(), nil
}

// MarshalPlan encodes p as stable, indented JSON, ending with a newline.
func MarshalPlan(p *Plan) ([]byte, error) { return marshalIndent(p) }

// UnmarshalPlan decodes a plan written by MarshalPlan. Unknown fields are
// ignored; a newer format version is refused, and so are steps without an
// id, with one used twice or depending on a step not in the plan.
func UnmarshalPlan(b []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("failed to decode plan: %w", err)
	}
	if p.FormatVersion > PlanFormatVersion {
		return nil, fmt.Errorf("plan format_version %d is newer than this swarmsync understands (%d): upgrade swarmsync", p.FormatVersion, PlanFormatVersion)
	}
	if p.FormatVersion == 0 {
		return nil, fmt.Errorf("failed to decode plan: format_version is missing (is this a plan file?)")
	}
	if err := p.check(); err != nil {
		return nil, err
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

// Fingerprint is the sha256 (hex) of everything in o that planning depends
// on, in canonical order: per instance its id, cluster, group, config tag,
// state, private IP, zone and launch time (joinTimeout and victim age); per
// node its id, role, availability, state, addresses, reachability,
// leadership, instance engine label and spec labels (sorted); the unowned
// instances likewise. It leaves out TakenAt, node versions, hostnames,
// creation times and other tags, so two observations of an unchanged
// cluster have the same fingerprint. apply compares it to refuse a stale
// plan.
func (o Observed) Fingerprint() string { return fingerprint(o.Canonical()) }

// fingerprint hashes an observation already in canonical order. Every field
// is written length-prefixed, so no two observations share an encoding.
func fingerprint(c Observed) string {
	h := sha256.New()
	var buf []byte
	str := func(s string) {
		buf = strconv.AppendInt(buf, int64(len(s)), 10)
		buf = append(buf, ':')
		buf = append(buf, s...)
	}
	flush := func() {
		h.Write(buf)
		buf = buf[:0]
	}
	str("swarmsync-observation-v1")
	str(c.Cluster)
	str(strconv.FormatBool(c.Swarm.Active))
	insts := func(tag string, in []providers.Instance) {
		str(tag)
		str(strconv.Itoa(len(in)))
		for _, x := range in {
			str(x.ID)
			str(x.Cluster)
			str(x.Group)
			str(x.Config)
			str(string(x.State))
			str(x.PrivateIP)
			str(x.Zone)
			buf = x.LaunchedAt.UTC().AppendFormat(buf, time.RFC3339Nano)
			buf = append(buf, ';')
			flush()
		}
	}
	insts("instances", c.Instances)
	insts("unowned", c.Unowned)
	str("nodes")
	str(strconv.Itoa(len(c.Swarm.Nodes)))
	var keys []string
	for _, n := range c.Swarm.Nodes {
		str(n.ID)
		str(string(n.Role))
		str(string(n.Availability))
		str(string(n.State))
		str(n.Addr)
		str(n.ManagerAddr)
		str(string(n.Reachability))
		str(strconv.FormatBool(n.Leader))
		str(n.InstanceID())
		keys = keys[:0]
		for k := range n.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		str(strconv.Itoa(len(keys)))
		for _, k := range keys {
			str(k)
			str(n.Labels[k])
		}
		flush()
	}
	// The swarm's own labels (the recorded join-token rotation) and its
	// creation time count only when known, so observations without them
	// keep their fingerprints.
	if len(c.Swarm.Labels) > 0 {
		str("swarm-labels")
		keys = keys[:0]
		for k := range c.Swarm.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		str(strconv.Itoa(len(keys)))
		for _, k := range keys {
			str(k)
			str(c.Swarm.Labels[k])
		}
	}
	if !c.Swarm.CreatedAt.IsZero() {
		str("swarm-created")
		buf = c.Swarm.CreatedAt.UTC().AppendFormat(buf, time.RFC3339Nano)
	}
	// The network and the ingress ports count only when observed.
	if c.Network != nil {
		str("network")
		str(networkKey(*c.Network))
	}
	if c.Ingress != nil {
		str("ingress")
		str(strconv.Itoa(len(c.Ingress.Ports)))
		for _, p := range c.Ingress.Ports {
			str(p.Protocol)
			str(strconv.Itoa(p.Port))
		}
	}
	flush()
	return hex.EncodeToString(h.Sum(nil))
}
