package plan

import (
	"maps"
	"slices"
	"strings"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// NodeLabelManaged is the node label in which the label step records the
// spec label keys swarmsync wrote on the node, so that a later plan can
// remove the keys the spec no longer has without touching labels it never
// managed. Its value is the sorted keys joined by commas, each key with
// "%" and "," percent-encoded ("tier,zone"); it is absent when the spec
// sets no labels on the node's group.
const NodeLabelManaged = "swarmsync.labels"

var (
	managedEscaper   = strings.NewReplacer("%", "%25", ",", "%2C")
	managedUnescaper = strings.NewReplacer("%2C", ",", "%2c", ",", "%25", "%")
)

// encodeManaged returns the NodeLabelManaged value for sorted keys.
func encodeManaged(keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = managedEscaper.Replace(k)
	}
	return strings.Join(parts, ",")
}

// decodeManaged returns the keys recorded in a NodeLabelManaged value.
func decodeManaged(v string) []string {
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	out := parts[:0]
	for _, p := range parts {
		if p == "" {
			continue
		}
		out = append(out, managedUnescaper.Replace(p))
	}
	return slices.Compact(out)
}

// specKeys returns the sorted spec label keys of labels (swarmsync's own
// swarmsync.* keys are never spec labels).
func specKeys(labels map[string]string) []string {
	var keys []string
	for k := range labels {
		if !strings.HasPrefix(k, "swarmsync.") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// wanted returns the labels and availability the spec wants on group's
// nodes: the spec's labels, the group label and, when the spec sets labels,
// NodeLabelManaged listing their keys. The map is the caller's.
func wanted(d schema.Cluster, group string) (map[string]string, providers.Availability) {
	var labels map[string]string
	var avail string
	if group == schema.ManagersGroup {
		labels, avail = d.Managers.Labels, d.Managers.Availability
		if avail == "" {
			avail = string(providers.AvailabilityDrain)
		}
	} else {
		g, _ := workerGroup(d, group)
		labels, avail = g.Labels, g.Availability
		if avail == "" {
			avail = string(providers.AvailabilityActive)
		}
	}
	out := make(map[string]string, len(labels)+2)
	maps.Copy(out, labels)
	if keys := specKeys(labels); len(keys) > 0 {
		out[NodeLabelManaged] = encodeManaged(keys)
	}
	out[providers.NodeLabelGroup] = group
	return out, providers.Availability(avail)
}

// wantedState is what the spec wants on a group's nodes, for comparing.
type wantedState struct {
	labels map[string]string
	keys   []string // sorted keys of labels
	avail  providers.Availability
	// managed is the NodeLabelManaged value ("" when the spec sets no
	// labels) and spec the spec label keys it lists.
	managed string
	spec    map[string]bool
}

// want returns what wanted(group) says, computed once per group. Callers
// must not modify the labels.
func (b *builder) want(group string) wantedState {
	w, ok := b.wants[group]
	if !ok {
		w.labels, w.avail = wanted(b.d, group)
		w.keys = slices.Sorted(maps.Keys(w.labels))
		w.managed = w.labels[NodeLabelManaged]
		w.spec = map[string]bool{}
		for _, k := range specKeys(w.labels) {
			w.spec[k] = true
		}
		b.wants[group] = w
	}
	return w
}

// labelDrift plans a label step when m's Ready node lacks a wanted label,
// has another availability, or still carries a label swarmsync wrote
// earlier (listed in NodeLabelManaged) that the spec no longer has. Such a
// label is removed by the step (value ""); labels swarmsync never managed
// are left alone.
func (b *builder) labelDrift(m *member, after string) {
	if m.node == nil || m.node.State != providers.NodeReady || m.frozen {
		return
	}
	w := b.want(m.group)
	labels, avail := w.labels, w.avail
	var diff []string
	for _, k := range w.keys {
		// An empty value is what Swarm removes: absent is the same.
		if m.node.Labels[k] != labels[k] {
			diff = append(diff, k+"="+labels[k])
		}
	}
	var drop []string
	if had := m.node.Labels[NodeLabelManaged]; had != w.managed {
		for _, k := range decodeManaged(had) {
			if _, ok := m.node.Labels[k]; ok && !w.spec[k] && !strings.HasPrefix(k, "swarmsync.") {
				diff = append(diff, "-"+k+" (no longer in the spec)")
				drop = append(drop, k)
			}
		}
		if w.managed == "" {
			diff = append(diff, "-"+NodeLabelManaged)
			drop = append(drop, NodeLabelManaged)
		}
	}
	if m.node.Availability != avail {
		diff = append(diff, "availability "+string(m.node.Availability)+" -> "+string(avail))
	}
	if len(diff) == 0 {
		return
	}
	out := maps.Clone(labels)
	for _, k := range drop {
		out[k] = "" // removes the key (providers.NodeChange)
	}
	s, t := target(Step{Action: ActionLabel, Labels: out, Availability: avail, DependsOn: []string{after},
		Reason: "labels or availability drifted from the spec: " + strings.Join(diff, ", ")}, m)
	b.add(s, t)
}
