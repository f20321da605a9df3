package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/swarmsync/swarmsync/schema"
)

// intentional counts the removals the spec asks for (scale-down and prune)
// and checks the blast-radius rules: it returns a *RefusedError when they
// exceed safety.maxRemovalsPerApply, or empty a group of running nodes
// without safety.allowEmpty.
func (b *builder) intentional() (int, error) {
	total := 0
	var emptied []string
	for _, name := range b.sortedGroups() {
		g := b.c.groups[name]
		want, declared := desiredCount(b.d, name)
		switch {
		case !declared && name != "unknown":
			if b.d.Safety.Prune {
				total += len(g.kept) + len(g.stale)
			}
		case name == schema.ManagersGroup:
			total += max(0, len(g.kept)-want)
		case declared:
			total += max(0, len(g.kept)-want)
			if want == 0 && !b.d.Safety.AllowEmpty && slices.ContainsFunc(g.kept, func(m *member) bool {
				return !m.down() // Ready, or about to join
			}) {
				emptied = append(emptied, name)
			}
		}
	}
	if len(emptied) > 0 {
		return 0, &RefusedError{Limit: "allowEmpty", Field: "safety.allowEmpty",
			Detail: fmt.Sprintf("the spec sets count 0 for %s, which would remove every running node of the group; set safety.allowEmpty: true in the spec of cluster %q to allow it", strings.Join(emptied, ", "), b.d.Name)}
	}
	if limit := b.d.Safety.MaxRemovalsPerApply; total > limit {
		return 0, &RefusedError{Limit: "maxRemovalsPerApply", Field: "safety.maxRemovalsPerApply",
			Detail: fmt.Sprintf("the plan would remove %d nodes, more than the limit of %d; raise safety.maxRemovalsPerApply in the spec of cluster %q, or reduce the counts in smaller steps", total, limit, b.d.Name)}
	}
	return total, nil
}

// initBudget sets the removal budget to safety.maxRemovalsPerApply and
// reserves from it the intentional removals and every self-healing one
// (ghost entries included), so
// that rolling replacements only use what they leave.
func (b *builder) initBudget(intentional int) {
	heal := len(b.c.deadManagers) + len(b.c.ghosts)
	for name, g := range b.c.groups {
		heal += len(g.orphans) + len(g.misplaced)
		if _, declared := desiredCount(b.d, name); declared {
			heal += len(g.stale) + len(g.broken)
		}
	}
	b.budget = b.d.Safety.MaxRemovalsPerApply
	b.reserved = intentional + heal
}

// takeHeal takes one removal from the budget for self-healing or for a
// removal the spec asks for; what does not fit is left for a later pass.
func (b *builder) takeHeal() bool {
	b.reserved--
	if b.budget > 0 {
		b.budget--
		return true
	}
	b.healDeferred++
	return false
}

// takeReplace takes one removal for a rolling replacement, from what is
// not reserved for self-healing and spec-requested removals.
func (b *builder) takeReplace() bool {
	if b.budget-max(0, b.reserved) > 0 {
		b.budget--
		return true
	}
	b.replaceDeferred++
	return false
}
