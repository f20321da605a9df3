package plan

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// SwarmRule is traffic Swarm needs between the members of a cluster.
type SwarmRule struct {
	Protocol string // tcp | udp
	Port     int
	// ToManagers: only managers must accept it (from every member);
	// otherwise every member must accept it from every member.
	ToManagers bool
	Why        string
}

// SwarmRules are the rules the network preflight checks and the managed
// security group holds (Docker's "open protocols and ports between the
// hosts").
var SwarmRules = []SwarmRule{
	{"tcp", 2377, true, "cluster management: joins and raft"},
	{"tcp", 7946, false, "node communication (gossip)"},
	{"udp", 7946, false, "node communication (gossip)"},
	{"udp", 4789, false, "overlay network traffic (VXLAN)"},
}

func (r SwarmRule) String() string { return strconv.Itoa(r.Port) + "/" + r.Protocol }

// ManagedSecurityGroupName is the name of the security group swarmsync
// creates for cluster when provider.aws.managedSecurityGroup is set.
func ManagedSecurityGroupName(cluster string) string { return "swarmsync-" + cluster }

// ManagedSecurityGroupSelf is the source group of a managed rule that
// names the managed group itself (its id is not known before it exists).
const ManagedSecurityGroupSelf = "self"

// netGroup is one declared group as the network preflight sees it.
type netGroup struct {
	name, field string // "workers/web", "workers.web"
	count       int
	inst        schema.Instance
}

func (b *builder) netGroups() []netGroup {
	gs := []netGroup{{schema.ManagersGroup, "managers", b.d.Managers.Count, b.d.Managers.Instance}}
	for _, name := range slices.Sorted(maps.Keys(b.d.Workers)) {
		g := b.d.Workers[name]
		gs = append(gs, netGroup{schema.WorkerGroupName(name), "workers." + name, g.Count, g.Instance})
	}
	return gs
}

// managedSG returns the cluster's managed security group as observed (nil
// when it does not exist).
func (b *builder) managedSG() *providers.SecurityGroup {
	if b.o.Network == nil {
		return nil
	}
	for i, g := range b.o.Network.SecurityGroups {
		if g.Tags[providers.TagCluster] == b.d.Name && g.Tags[providers.TagManaged] == "security-group" {
			return &b.o.Network.SecurityGroups[i]
		}
	}
	return nil
}

// preflight checks the network the spec names (package doc, "Network")
// and plans the managed security group. It returns a *RefusedError naming
// what is missing.
func (b *builder) preflight() error {
	n := b.o.Network
	if n == nil || b.d.Provider.AWS == nil {
		return nil
	}
	subnets := map[string]providers.Subnet{}
	for _, s := range n.Subnets {
		subnets[s.ID] = s
	}
	sgs := map[string]providers.SecurityGroup{}
	for _, g := range n.SecurityGroups {
		sgs[g.ID] = g
	}
	groups := b.netGroups()
	for _, g := range groups {
		zones := map[string]bool{}
		for _, id := range g.inst.Subnets {
			s, ok := subnets[id]
			if !ok {
				return &RefusedError{Limit: "network", Field: g.field + ".instance.subnets",
					Detail: fmt.Sprintf("subnet %s does not exist in region %s: name an existing subnet", id, b.d.Provider.AWS.Region)}
			}
			zones[s.Zone] = true
		}
		if len(zones) == 1 && g.count > 1 {
			b.note("Group %s has all its subnets in zone %s: an outage of that zone takes all its nodes. Name subnets in more zones to spread it.", g.name, slices.Collect(maps.Keys(zones))[0])
		}
		for _, id := range g.inst.SecurityGroups {
			if _, ok := sgs[id]; !ok {
				return &RefusedError{Limit: "network", Field: g.field + ".instance.securityGroups",
					Detail: fmt.Sprintf("security group %s does not exist in region %s: name an existing security group", id, b.d.Provider.AWS.Region)}
			}
		}
	}
	if b.d.Provider.AWS.ManagedSecurityGroup {
		b.managedSGPending = func() { b.planManagedSG(subnets) }
		return nil
	}
	return b.checkRules(groups, subnets, sgs)
}

// networkSteps plans the managed security group's steps, once, when the
// pass plans anything at all (not when the Swarm is unreachable or has
// lost quorum).
func (b *builder) networkSteps() {
	if f := b.managedSGPending; f != nil {
		b.managedSGPending = nil
		f()
	}
}

// checkRules refuses the plan when the groups' security groups do not let
// Swarm's traffic through between every pair of groups.
func (b *builder) checkRules(groups []netGroup, subnets map[string]providers.Subnet, sgs map[string]providers.SecurityGroup) error {
	// One message per rule to add: the destination's first group, the
	// rule and its source; the groups that need it are listed.
	type need struct{ sg, rule, from, why string }
	var order []need
	needs := map[need][]string{}
	var unchecked []string
	for _, dst := range groups {
		if dst.count == 0 {
			continue
		}
		if len(dst.inst.SecurityGroups) == 0 {
			unchecked = append(unchecked, dst.name)
			continue
		}
		for _, r := range SwarmRules {
			if r.ToManagers && dst.name != schema.ManagersGroup {
				continue
			}
			for _, src := range groups {
				if src.count == 0 || allows(dst.inst.SecurityGroups, sgs, r, src, subnets) {
					continue
				}
				from := "CIDR " + strings.Join(cidrs(src, subnets), ", CIDR ")
				if len(src.inst.SecurityGroups) > 0 {
					from = "security group " + src.inst.SecurityGroups[0]
				}
				k := need{dst.inst.SecurityGroups[0], fmt.Sprintf("%s port %d", r.Protocol, r.Port), from, r.Why}
				if _, ok := needs[k]; !ok {
					order = append(order, k)
				}
				pair := src.name + " → " + dst.name
				if !slices.Contains(needs[k], pair) {
					needs[k] = append(needs[k], pair)
				}
			}
		}
	}
	if len(unchecked) > 0 {
		b.note("Groups %s name no securityGroups: their instances get the VPC's default security group, whose rules are not checked.", strings.Join(unchecked, ", "))
	}
	if len(order) == 0 {
		return nil
	}
	var msgs []string
	for _, k := range order {
		msgs = append(msgs, fmt.Sprintf("add to security group %s an inbound rule %s from %s (%s, %s)", k.sg, k.rule, k.from, k.why, strings.Join(needs[k], ", ")))
	}
	return &RefusedError{Limit: "network", Field: "provider.aws.managedSecurityGroup",
		Detail: "the security groups do not let Swarm's traffic through: " + strings.Join(msgs, "; ") +
			"; or set provider.aws.managedSecurityGroup: true to have swarmsync keep a security group with these rules"}
}

// allows reports whether one of the security groups dst lets r in from
// every member of src: a rule whose source is one of src's groups, or a
// CIDR that covers every subnet of src.
func allows(dst []string, sgs map[string]providers.SecurityGroup, r SwarmRule, src netGroup, subnets map[string]providers.Subnet) bool {
	for _, id := range dst {
		for _, in := range sgs[id].Ingress {
			if in.Protocol != "-1" && in.Protocol != r.Protocol || r.Port < in.FromPort || r.Port > in.ToPort {
				continue
			}
			if in.SourceGroup != "" && slices.Contains(src.inst.SecurityGroups, in.SourceGroup) {
				return true
			}
			if in.CIDR != "" && covers(in.CIDR, cidrs(src, subnets)) {
				return true
			}
		}
	}
	return false
}

func cidrs(g netGroup, subnets map[string]providers.Subnet) []string {
	var out []string
	for _, id := range g.inst.Subnets {
		out = append(out, subnets[id].CIDR)
	}
	return out
}

// covers reports whether prefix contains every network of nets.
func covers(prefix string, nets []string) bool {
	p, err := netip.ParsePrefix(prefix)
	if err != nil || len(nets) == 0 {
		return false
	}
	for _, n := range nets {
		q, err := netip.ParsePrefix(n)
		if err != nil || q.Bits() < p.Bits() || !p.Contains(q.Addr()) {
			return false
		}
	}
	return true
}

// planManagedSG plans create-security-group and authorize-ingress for the
// rules the managed group lacks. Launches depend on the last of them.
func (b *builder) planManagedSG(subnets map[string]providers.Subnet) {
	sg := b.managedSG()
	var want []providers.Rule
	for _, r := range SwarmRules {
		src := ManagedSecurityGroupSelf
		if sg != nil {
			src = sg.ID
		}
		rule := providers.Rule{Protocol: r.Protocol, FromPort: r.Port, ToPort: r.Port, SourceGroup: src}
		if sg == nil || !slices.Contains(sg.Ingress, rule) {
			want = append(want, rule)
		}
	}
	after := ""
	name := ManagedSecurityGroupName(b.d.Name)
	if sg == nil {
		vpc := ""
		if len(b.d.Managers.Instance.Subnets) > 0 {
			vpc = subnets[b.d.Managers.Instance.Subnets[0]].VPC
		}
		after = b.add(Step{Action: ActionCreateSecurityGroup, VPC: vpc,
			Reason: fmt.Sprintf("provider.aws.managedSecurityGroup: create security group %s in %s for Swarm's traffic between members; every instance is launched with it", name, vpc)}, name)
	}
	if len(want) > 0 {
		var what []string
		for _, r := range want {
			what = append(what, fmt.Sprintf("%d/%s", r.FromPort, r.Protocol))
		}
		after = b.add(Step{Action: ActionAuthorizeIngress, Rules: want, DependsOn: []string{after},
			Reason: fmt.Sprintf("allow %s between members (from the group itself) in %s", strings.Join(what, ", "), name)}, name)
	}
	b.networkReady = after
}
