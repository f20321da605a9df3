package plan

import (
	"slices"
	"strings"
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
