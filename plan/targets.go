package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// targetGroupsOf returns the observed target groups group's nodes belong
// in: the spec's targetGroups of the group and, for the load balancer's
// group, the target groups of the listeners swarmsync created. Nothing
// when the network was not observed.
func (b *builder) targetGroupsOf(group string) []string {
	n := b.o.Network
	if n == nil {
		return nil
	}
	var want []string
	if group == schema.ManagersGroup {
		want = slices.Clone(b.d.Managers.TargetGroups)
	} else if g, ok := workerGroup(b.d, group); ok {
		want = slices.Clone(g.TargetGroups)
	}
	if lb := b.d.LoadBalancer; lb != nil && schema.WorkerGroupName(lb.Group) == group && n.LoadBalancer != nil {
		for _, l := range b.ownedListeners() {
			want = append(want, l.TargetGroup)
		}
	}
	var out []string
	for _, tg := range n.TargetGroups {
		if slices.Contains(want, tg.ARN) {
			out = append(out, tg.ARN)
		}
	}
	return out
}

// registeredIn returns the observed target groups in which instance id is
// registered and not being deregistered.
func (b *builder) registeredIn(id string) []string {
	if b.o.Network == nil {
		return nil
	}
	var out []string
	for _, tg := range b.o.Network.TargetGroups {
		for _, t := range tg.Targets {
			if t.ID == id && t.Registered() {
				out = append(out, tg.ARN)
			}
		}
	}
	return out
}

// registerLaunched plans register-targets for the machines of a launch,
// after their label step, and returns its id (label when there is nothing
// to register).
func (b *builder) registerLaunched(group, launch, label, target string, batch int) string {
	tgs := b.targetGroupsOf(group)
	if len(tgs) == 0 {
		return label
	}
	return b.add(Step{Action: ActionRegisterTargets, Group: group, LaunchStep: launch, TargetGroups: tgs, Batch: batch, DependsOn: []string{label},
		Reason: "the new nodes have joined and are labelled: they receive traffic from now on"}, target)
}

// deregisterFirst plans, for a member about to leave whose instance is
// registered in target groups, deregister-targets → await-deregistered
// (the target groups' deregistration delay), and returns what the next
// step of its exit depends on (after when nothing is needed).
func (b *builder) deregisterFirst(m *member, why string, batch int, after []string) []string {
	if m.inst == nil {
		return after
	}
	b.leaving[m.inst.ID] = true
	tgs := b.registeredIn(m.inst.ID)
	if len(tgs) == 0 {
		return after
	}
	s, t := target(Step{Action: ActionDeregisterTargets, TargetGroups: tgs, DependsOn: after, Batch: batch,
		Reason: why + ": take it out of the load balancer before it is drained"}, m)
	dereg := b.add(s, t)
	s, t = target(Step{Action: ActionAwaitDeregistered, TargetGroups: tgs, DependsOn: []string{dereg}, Batch: batch,
		Reason: "wait until its connections are drained (the target groups' deregistration delay)"}, m)
	return []string{b.add(s, t)}
}

// environment plans what follows the cluster around it: members not yet
// registered in their target groups, and the load balancer's listeners.
func (b *builder) environment() {
	if b.o.Network == nil {
		return
	}
	for _, name := range b.sortedGroups() {
		tgs := b.targetGroupsOf(name)
		if len(tgs) == 0 {
			continue
		}
		for _, m := range b.c.groups[name].kept {
			if !b.registrable(m, name) {
				continue
			}
			have := b.registeredIn(m.inst.ID)
			missing := slices.DeleteFunc(slices.Clone(tgs), func(tg string) bool { return slices.Contains(have, tg) })
			if len(missing) == 0 {
				continue
			}
			s, t := target(Step{Action: ActionRegisterTargets, TargetGroups: missing, DependsOn: []string{m.joinStep},
				Reason: "the node has joined and is labelled but takes no traffic from these target groups"}, m)
			b.add(s, t)
		}
	}
	b.listeners()
}

// registrable reports whether member m of group may receive traffic: it
// stays, its instance runs (or is planned to join and be labelled in this
// plan) and its node is Ready and labelled with its group.
func (b *builder) registrable(m *member, group string) bool {
	if m.frozen || m.inst == nil || b.leaving[m.inst.ID] {
		return false
	}
	if m.node == nil {
		return m.joinStep != ""
	}
	return m.inst.State == providers.StateRunning && m.node.State == providers.NodeReady && m.node.Labels[providers.NodeLabelGroup] == group
}

// ownedListeners returns the listeners of the load balancer that
// swarmsync created for this cluster.
func (b *builder) ownedListeners() []providers.Listener {
	var out []providers.Listener
	if b.o.Network == nil || b.o.Network.LoadBalancer == nil {
		return nil
	}
	for _, l := range b.o.Network.LoadBalancer.Listeners {
		if l.Tags[providers.TagCluster] == b.d.Name && l.Tags[providers.TagManaged] == "listener" {
			out = append(out, l)
		}
	}
	return out
}

// ListenerTargetGroupName is the name of the target group swarmsync
// creates for a listener of cluster on port/protocol (at most 32
// characters, as ELBv2 requires).
func ListenerTargetGroupName(cluster, protocol string, port int) string {
	sum := sha256.Sum256([]byte(cluster))
	return "ss-" + hex.EncodeToString(sum[:4]) + "-" + strings.ToLower(protocol) + "-" + strconv.Itoa(port)
}

// listeners plans one listener per ingress-published port and removes the
// listeners swarmsync created for ports no longer published.
func (b *builder) listeners() {
	lb := b.d.LoadBalancer
	n := b.o.Network
	if lb == nil || b.o.Ingress == nil {
		return
	}
	if n.LoadBalancer == nil {
		b.note("Load balancer %s does not exist: no listener is planned. Fix loadBalancer.arn.", lb.ARN)
		return
	}
	group := schema.WorkerGroupName(lb.Group)
	owned := map[string]providers.Listener{}
	for _, l := range b.ownedListeners() {
		owned[l.Protocol+"/"+strconv.Itoa(l.Port)] = l
	}
	taken := map[string]bool{}
	for _, l := range n.LoadBalancer.Listeners {
		taken[strconv.Itoa(l.Port)] = true
	}
	wanted := map[string]bool{}
	var targets []string
	for _, m := range b.c.groups[group].kept {
		if b.registrable(m, group) && m.node != nil {
			targets = append(targets, m.inst.ID)
		}
	}
	slices.Sort(targets)
	for _, p := range b.o.Ingress.Ports {
		proto := strings.ToUpper(p.Protocol)
		if proto != "TCP" && proto != "UDP" {
			continue
		}
		key := proto + "/" + strconv.Itoa(p.Port)
		wanted[key] = true
		if _, ok := owned[key]; ok {
			continue
		}
		if taken[strconv.Itoa(p.Port)] {
			b.note("Port %d of the load balancer has a listener swarmsync did not create: left alone (service %s publishes %d/%s).", p.Port, p.Service, p.Port, p.Protocol)
			continue
		}
		b.add(Step{Action: ActionCreateListener, Group: group, Port: p.Port, Protocol: proto, TargetGroupName: ListenerTargetGroupName(b.d.Name, proto, p.Port),
			Targets: targets, Reason: fmt.Sprintf("service %s publishes %d/%s in ingress mode: route it from the load balancer to the nodes of %s", p.Service, p.Port, p.Protocol, group)},
			strings.ToLower(proto)+"-"+strconv.Itoa(p.Port))
	}
	for _, key := range slices.Sorted(maps.Keys(owned)) {
		if wanted[key] {
			continue
		}
		l := owned[key]
		b.add(Step{Action: ActionDeleteListener, Group: group, Port: l.Port, Protocol: l.Protocol, Listener: l.ARN, TargetGroups: []string{l.TargetGroup},
			Reason: fmt.Sprintf("no service publishes %d/%s any more: remove the listener swarmsync created and its target group", l.Port, strings.ToLower(l.Protocol))},
			strings.ToLower(l.Protocol)+"-"+strconv.Itoa(l.Port))
	}
}
