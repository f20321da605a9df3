package apply

import (
	"context"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// sharedObservation is the Swarm state the waiting steps of one apply
// share: several steps wait at once (remove-node steps hold no
// parallelism slot), and each polling on its own would list the nodes once
// per waiting step and poll: calls per poll would grow with the number of
// nodes leaving. An observation younger than PollInterval (on the
// injected clock) is reused, concurrent callers wait for one call, and a
// mutating step that ends forgets it.
type sharedObservation struct {
	sw    providers.Swarm
	state providers.SwarmState
	at    time.Time
	ok    bool
}

// observeShared returns sw's state for a wait: the shared observation when
// it is fresh and from sw, else a new one.
func (e *executor) observeShared(ctx context.Context, sw providers.Swarm) (providers.SwarmState, error) {
	e.obsMu.Lock()
	defer e.obsMu.Unlock()
	now := e.deps.Clock.Now()
	o := &e.obs
	if o.ok && o.sw == sw && now.Sub(o.at) < e.deps.PollInterval {
		return o.state, nil
	}
	st, err := sw.Observe(ctx)
	if err != nil {
		o.ok = false
		return st, err
	}
	*o = sharedObservation{sw: sw, state: st, at: now, ok: true}
	return st, nil
}

// forgetObservation drops the shared observation (the world changed).
func (e *executor) forgetObservation() {
	e.obsMu.Lock()
	e.obs.ok = false
	e.obsMu.Unlock()
}
