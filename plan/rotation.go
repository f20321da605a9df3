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

// Join-token rotation has two triggers, planned as one step:
//
//   - joinTokens.rotateAfterJoin: the tokens used by nodes that join in this
//     plan are rotated once they all joined;
//   - schedule.rotateJoinTokens (a cron): both tokens are rotated when an
//     activation of the cron has come since the last recorded rotation.
//
// The Swarm is the state. The last rotation of both tokens is recorded on
// the Swarm itself, as the swarm spec label
// providers.SwarmLabelJoinTokensRotated, written by the same SwarmUpdate
// that rotates (so a crash leaves both or neither), and observed as
// Observed.Swarm.Labels. A new leader, a restarted daemon, or a re-run reads
// it back; nothing else is kept.
//
// The time recorded is observed.TakenAt (whole seconds, UTC), carried by the
// step as Step.RecordRotatedAt so apply stays clock-free and the plan pure.
// TakenAt, not the cron activation, because the label then means one thing
// whichever trigger wrote it: "both tokens were rotated no earlier than
// this". TakenAt is at or after the activation that made the rotation due,
// so the same activation is never due again, and it is a lower bound of
// when the rotation really ran (apply runs after the observation).
//
// Only a step that rotates both tokens records: an after-join rotation of
// the worker token alone leaves the manager token as old as it was, and
// recording it would push the manager token's scheduled rotation back.

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

// rotateTokens plans the join-token rotation of this plan, if any, and
// returns its id ("" when none): after every join of the plan (and extra)
// when joinTokens.rotateAfterJoin is set and nodes join, and of both tokens
// when schedule.rotateJoinTokens is due. A scheduled rotation also waits for
// every join of the plan: a node still joining holds the current token.
func (b *builder) rotateTokens(extra []string) string {
	afterJoin := b.d.JoinTokens.RotateAfterJoin && (b.workerJoined || b.managerJoined)
	if !afterJoin && !b.rotationDue {
		return ""
	}
	worker, manager := b.workerJoined && afterJoin, b.managerJoined && afterJoin
	var reasons []string
	if afterJoin {
		var which []string
		if worker {
			which = append(which, "worker")
		}
		if manager {
			which = append(which, "manager")
		}
		reasons = append(reasons, "the "+strings.Join(which, " and ")+" join token was used by new nodes (joinTokens.rotateAfterJoin)")
	}
	if b.rotationDue {
		worker, manager = true, true
		why := "no rotation is recorded on the Swarm"
		if rec, ok := b.o.Swarm.JoinTokensRotated(); ok {
			why = "the last recorded rotation is " + providers.FormatRotated(rec)
		} else if !b.o.Swarm.CreatedAt.IsZero() {
			why += ", created at " + providers.FormatRotated(b.o.Swarm.CreatedAt)
		}
		reasons = append(reasons, fmt.Sprintf("schedule.rotateJoinTokens (%q) was due at %s and %s", b.d.Schedule.RotateJoinTokens, providers.FormatRotated(b.rotationAt), why))
	}
	s := Step{Action: ActionRotateJoinToken, RotateWorker: worker, RotateManager: manager,
		DependsOn: append(slices.Clone(b.joins), extra...), Reason: strings.Join(reasons, "; ")}
	var which []string
	if worker {
		which = append(which, "worker")
	}
	if manager {
		which = append(which, "manager")
		if worker {
			s.RecordRotatedAt = b.now.UTC().Truncate(time.Second)
		}
	}
	return b.add(s, strings.Join(which, "-"))
}
