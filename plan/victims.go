package plan

import (
	"cmp"
	"slices"
	"strings"
)

// victimClass ranks why a member should leave first: lower leaves earlier.
func victimClass(m *member) int {
	switch {
	case m.outdated:
		return 0
	case m.down() || m.held:
		return 1
	default:
		return 2
	}
}

// pickVictims returns n members of ms in the order they should leave
// (package documentation, "Victims"), picking one at a time: when zones
// tie on their count of members, the zone name that sorts first goes
// first; an earlier pick counts as gone for the next.
//
// Zones are counted over group (all members of the group, the candidates
// among them); nil means the candidates are the whole group. It runs in
// O(n log n + picks·zones).
func pickVictims(ms []*member, n int, group []*member) []*member {
	if n <= 0 {
		return nil
	}
	zoneCount := map[string]int{}
	if group == nil {
		group = ms
	}
	for _, m := range group {
		zoneCount[m.zone()]++
	}
	type queue struct{ ms []*member }
	var classes [3]map[string]*queue
	for i := range classes {
		classes[i] = map[string]*queue{}
	}
	for _, m := range ms {
		z := m.zone()
		q := classes[victimClass(m)][z]
		if q == nil {
			q = &queue{}
			classes[victimClass(m)][z] = q
		}
		q.ms = append(q.ms, m)
	}
	zones := make([][]string, len(classes))
	for c, byZone := range classes {
		for z, q := range byZone {
			slices.SortFunc(q.ms, func(a, b *member) int {
				if c := a.launched().Compare(b.launched()); c != 0 {
					return c
				}
				return strings.Compare(a.id(), b.id())
			})
			zones[c] = append(zones[c], z)
		}
		slices.Sort(zones[c])
	}
	out := make([]*member, 0, min(n, len(ms)))
	for len(out) < n {
		picked := false
		for c := range classes {
			best := ""
			found := false
			for _, z := range zones[c] {
				if len(classes[c][z].ms) == 0 {
					continue
				}
				if !found || cmp.Compare(zoneCount[z], zoneCount[best]) > 0 {
					best, found = z, true
				}
			}
			if !found {
				continue
			}
			q := classes[c][best]
			out = append(out, q.ms[0])
			q.ms = q.ms[1:]
			zoneCount[best]--
			picked = true
			break
		}
		if !picked {
			break
		}
	}
	return out
}
