package plan

import (
	"maps"
	"slices"

	"github.com/swarmsync/swarmsync/schema"
)

// workerGroup returns the worker group named by a "workers/<name>" group.
func workerGroup(c schema.Cluster, group string) (schema.WorkerGroup, bool) {
	const prefix = "workers/"
	if len(group) <= len(prefix) || group[:len(prefix)] != prefix {
		return schema.WorkerGroup{}, false
	}
	g, ok := c.Workers[group[len(prefix):]]
	return g, ok
}

// desiredCount returns the spec's count for group and whether the spec
// declares it.
func desiredCount(c schema.Cluster, group string) (int, bool) {
	if group == schema.ManagersGroup {
		return c.Managers.Count, true
	}
	g, ok := workerGroup(c, group)
	return g.Count, ok
}

// digest is ConfigDigest, computed once per group.
func (b *builder) digest(group string) string {
	d, ok := b.digests[group]
	if !ok {
		d = ConfigDigest(b.d, group)
		b.digests[group] = d
	}
	return d
}

// sortedGroups returns the names of every group seen or desired, sorted.
func (b *builder) sortedGroups() []string {
	return slices.Sorted(maps.Keys(b.c.groups))
}
