package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// When the join tokens are rotated is stated in the package documentation
// ("Join tokens"); here is how the Swarm is the state. Both tokens are
// rotated whichever was used: simpler than tracking which, and the rotation
// can always be recorded. The last rotation is recorded on the Swarm itself,
// as the swarm spec label providers.SwarmLabelJoinTokensRotated, written by
// the same SwarmUpdate that rotates (so a crash leaves both or neither), and
// observed as Observed.Swarm.Labels. A new leader, a restarted daemon, or a
// re-run reads it back; nothing else is kept.
//
// What is recorded is the latest of: the step's RecordRotatedAt, the latest
// creation time of the nodes the provider lists in the rotating call, and
// what was recorded before (providers.JoinTokenRecorder). RecordRotatedAt
// is observed.TakenAt (whole seconds, UTC) when the schedule is due, so the
// same activation is never due again (TakenAt is at or after it, and a
// lower bound of when the rotation ran: apply runs after the observation),
// and zero for a rotation after joins alone. The nodes' creation times come
// from the manager's clock, the one that stamps the nodes this planner
// compares with the record: so no node that joined before the rotation
// ever looks newer than it (swarmsync's clock may be behind), and a node
// that joins after the rotation is newer than it unless swarmsync's clock
// was ahead of the manager's when a scheduled rotation recorded TakenAt (a
// node joining within that skew after such a rotation is not seen;
// keeping clocks synchronised keeps that window at nothing).

// rotationDue evaluates schedule.rotateJoinTokens at now against the
// rotation recorded on the Swarm. It returns the activation that made it due
// (zero and false when not due), or an error for an expression that does
// not parse.
//
// It is due when the latest activation of the cron at or before now is
// after the recorded rotation. Without a valid record the swarm's creation
// time stands in (its tokens are no older), so a swarm created after the
// last activation is not due yet; with neither, any activation at or before
// now makes it due. "@every d" is anchored at the Unix epoch, as disruption
// windows are (see windowAt): its activations are the multiples of d since
// 1970-01-01T00:00:00Z.
func rotationDue(expr string, swarm providers.SwarmState, now time.Time) (time.Time, bool, error) {
	if expr == "" || !swarm.Active {
		return time.Time{}, false, nil
	}
	sched, err := schema.ParseCron(expr)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("failed to evaluate schedule.rotateJoinTokens: %w", err)
	}
	last := lastActivation(sched, now)
	if last.IsZero() {
		return time.Time{}, false, nil
	}
	if since, ok := swarm.JoinTokensSince(); ok && !last.After(since) {
		return time.Time{}, false, nil
	}
	return last, true, nil
}

// maxLookback bounds the search for the latest activation: past the cron
// library's own horizon of five years (a "29 February" schedule fires
// every four), about 8.5 years.
const maxLookback = time.Duration(1<<28) * time.Second

// lastActivation returns the latest activation of sched at or before now
// (UTC, whole seconds), or zero when there is none within maxLookback.
//
// The cron library only goes forward (Next(t) is the first activation
// strictly after t, at whole seconds), so: look back 1 s, 2 s, 4 s, … until
// some start point has an activation at or before now; then bisect, to the
// second, for the latest start point s with Next(s) ≤ now. Next(s) is then
// the answer: Next(s+1s) > now means no activation lies in (s+1s, now],
// and (s, s+1s] holds a single whole second. About 2·log2(age) calls to
// Next, whatever the density of the schedule.
func lastActivation(sched cron.Schedule, now time.Time) time.Time {
	now = now.UTC().Truncate(time.Second)
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		period := int64(every.Delay / time.Second) // whole seconds, at least one
		secs := now.Unix()
		return time.Unix(secs-floorMod(secs, period), 0).UTC()
	}
	hits := func(from time.Time) bool {
		t := sched.Next(from)
		return !t.IsZero() && !t.After(now)
	}
	var lo, hi time.Time // hits(lo), !hits(hi)
	hi = now
	for back := time.Second; ; back *= 2 {
		if back > maxLookback {
			return time.Time{}
		}
		if from := now.Add(-back); hits(from) {
			lo = from
			break
		} else {
			hi = from
		}
	}
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
		if hits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return sched.Next(lo).UTC()
}

// initNodeSkew bounds how far from the swarm's creation the node that
// created it (docker swarm init) is stamped: Swarm stores both in one
// update, measured about 20 µs apart. A node that joins with a token takes
// longer (a TLS certificate is issued to it): the fastest join measured on
// a lab swarm came half a second after the creation. Only the earliest
// node can be the swarm's own, so a node joining within this bound is
// missed only if the node that created the swarm is gone.
const initNodeSkew = 100 * time.Millisecond

// joinedAfterRotation returns the nodes that joined after the last
// recorded rotation of the join tokens (the swarm label, else the swarm's
// creation): they may hold a token that is still valid. The node that
// created the swarm used no token: it is the earliest node, created within
// initNodeSkew of the swarm, and is left out. Nodes without a creation
// time, and every node when the observation has neither a record nor the
// swarm's creation time (an observation saved by hand), say nothing.
func joinedAfterRotation(swarm providers.SwarmState) []*providers.Node {
	since, ok := swarm.JoinTokensSince()
	if !ok || !swarm.Active {
		return nil
	}
	var out []*providers.Node
	var first *providers.Node
	for i := range swarm.Nodes {
		n := &swarm.Nodes[i]
		if n.CreatedAt.IsZero() {
			continue
		}
		if first == nil || n.CreatedAt.Before(first.CreatedAt) {
			first = n
		}
		if n.CreatedAt.After(since) {
			out = append(out, n)
		}
	}
	if created := swarm.CreatedAt; first != nil && !created.IsZero() && first.CreatedAt.Sub(created).Abs() <= initNodeSkew {
		out = slices.DeleteFunc(out, func(n *providers.Node) bool { return n == first })
	}
	return out
}

// rotateTokens plans the join-token rotation when one is due (package
// documentation, "Join tokens"), after every join of the plan and extra (a
// node still joining holds the current token), and returns its id ("" when
// none).
func (b *builder) rotateTokens(extra []string) string {
	var reasons []string
	if b.d.JoinTokens.RotateAfterJoin {
		var which []string
		if b.workerJoined {
			which = append(which, "worker")
		}
		if b.managerJoined {
			which = append(which, "manager")
		}
		if len(which) > 0 {
			reasons = append(reasons, "the "+strings.Join(which, " and ")+" join token was used by new nodes (joinTokens.rotateAfterJoin)")
		}
		if late := joinedAfterRotation(b.o.Swarm); len(late) > 0 {
			latest := late[0]
			for _, n := range late[1:] {
				if n.CreatedAt.After(latest.CreatedAt) || (n.CreatedAt.Equal(latest.CreatedAt) && n.ID < latest.ID) {
					latest = n
				}
			}
			since := "the swarm's creation (" + providers.FormatRotated(b.o.Swarm.CreatedAt) + "; no rotation is recorded)"
			if rec, ok := b.o.Swarm.JoinTokensRotated(); ok {
				since = "the last recorded rotation (" + providers.FormatRotated(rec) + ")"
			}
			reasons = append(reasons, fmt.Sprintf("%d node(s) joined after %s, the latest %s at %s: a token a node joined with may still be valid (joinTokens.rotateAfterJoin)",
				len(late), since, latest.ID, providers.FormatRotated(latest.CreatedAt)))
		}
	}
	if b.rotationDue {
		why := "no rotation is recorded on the Swarm"
		if rec, ok := b.o.Swarm.JoinTokensRotated(); ok {
			why = "the last recorded rotation is " + providers.FormatRotated(rec)
		} else if !b.o.Swarm.CreatedAt.IsZero() {
			why += ", created at " + providers.FormatRotated(b.o.Swarm.CreatedAt)
		}
		reasons = append(reasons, fmt.Sprintf("schedule.rotateJoinTokens (%q) was due at %s and %s", b.d.Schedule.RotateJoinTokens, providers.FormatRotated(b.rotationAt), why))
	}
	if len(reasons) == 0 {
		return ""
	}
	s := Step{Action: ActionRotateJoinToken, RotateWorker: true, RotateManager: true,
		DependsOn: append(slices.Clone(b.joins), extra...), Reason: strings.Join(reasons, "; ") + "; both tokens are rotated and the rotation is recorded on the Swarm"}
	if b.rotationDue {
		s.RecordRotatedAt = b.now.UTC().Truncate(time.Second)
	}
	return b.add(s, "worker-manager")
}
