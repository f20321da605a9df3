package plan

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/swarmsync/swarmsync/schema"
)

// windows says whether a disruption window of the spec is open at "now"
// and, when none is, when the next one opens.
type windows struct {
	// open is true when a window is open at now, or when the spec declares
	// none (disruptive steps may run at any time).
	open bool
	// next is when the next window opens (UTC); zero when open, or when no
	// window opens within the cron parser's horizon of five years.
	next time.Time
}

// disruptionWindows evaluates schedule.disruptionWindows at now. A window
// is open at now when some activation t of its cron satisfies
// t ≤ now < t+duration.
//
// Cron expressions are evaluated in UTC (unless they start with CRON_TZ=),
// so the result does not depend on the zone the observation was taken in.
// For a cron expression, the first activation after now-duration decides:
// it is open when that activation is not after now, and otherwise it is
// when the window opens next (one Next call per window).
//
// "@every d" has no fixed phase in the cron library (its Next is "d after
// whatever time you ask"), which would push the window ahead of every pass.
// Here it is anchored at the Unix epoch: the window opens at every multiple
// of d since 1970-01-01T00:00:00Z (so "@every 24h" opens at 00:00 UTC).
func disruptionWindows(ws []schema.Window, now time.Time) (windows, error) {
	if len(ws) == 0 {
		return windows{open: true}, nil
	}
	now = now.UTC()
	var res windows
	for i, w := range ws {
		sched, err := schema.ParseCron(w.Cron)
		if err != nil {
			return windows{}, fmt.Errorf("failed to evaluate schedule.disruptionWindows[%d].cron: %w", i, err)
		}
		dur := w.Duration.Duration
		if dur <= 0 {
			return windows{}, fmt.Errorf("failed to evaluate schedule.disruptionWindows[%d].duration: %s is not greater than 0s", i, dur)
		}
		open, next := windowAt(sched, dur, now)
		if open {
			return windows{open: true}, nil
		}
		if !next.IsZero() && (res.next.IsZero() || next.Before(res.next)) {
			res.next = next
		}
	}
	return res, nil
}

// windowAt reports whether the window of sched lasting dur is open at now
// (UTC) and, when it is not, when it opens next (zero when never).
func windowAt(sched cron.Schedule, dur time.Duration, now time.Time) (open bool, next time.Time) {
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		period := int64(every.Delay / time.Second) // whole seconds, at least one
		secs := now.Unix()
		last := time.Unix(secs-floorMod(secs, period), 0).UTC() // latest activation ≤ now
		if now.Before(last.Add(dur)) {
			return true, time.Time{}
		}
		return false, last.Add(every.Delay)
	}
	first := sched.Next(now.Add(-dur)) // earliest activation > now-dur
	if first.IsZero() {
		return false, time.Time{}
	}
	if !first.After(now) {
		return true, time.Time{}
	}
	return false, first.UTC()
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// allow reports whether m may be taken out of the cluster now, and counts
// it as held back when not: outside every disruption window only members
// that give nothing any more may go (see the package documentation).
func (b *builder) allow(m *member) bool {
	joining := m.node == nil && m.inst != nil && !m.stale
	if !b.hold || !(m.ready() || m.isReachable() || joining) {
		return true
	}
	b.held++
	return false
}
