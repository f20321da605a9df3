package local

import (
	"context"
	"errors"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// resumeTimeout bounds how long completing one interrupted launch waits for
// its dockerd to answer.
const resumeTimeout = 2 * time.Minute

// resume completes the calls that died half-way (see the package doc): a
// pending machine whose dockerd runs is booted to the end, any other pending
// machine is torn down, a teardown or stop is finished. The caller holds the
// locks. Failures are logged and left for the next call: they must not
// block the call that found them.
func (c *Cloud) resume(ctx context.Context) error {
	recs, err := c.st.records()
	if err != nil {
		return err
	}
	dropped := map[string]bool{}
	for i := range recs {
		r := &recs[i]
		if r.TerminatedAt != nil {
			continue
		}
		var err error
		switch r.State {
		case providers.StatePending:
			if err = c.resumeLaunch(ctx, r); err == nil {
				c.cfg.Logger.Info("completed an interrupted launch", "cluster", r.Cluster, "id", r.ID)
				continue
			}
			c.cfg.Logger.Warn("an interrupted launch cannot be completed: terminating the instance", "cluster", r.Cluster, "id", r.ID, "err", err)
			err = c.teardown(ctx, r)
			dropped[r.Cluster] = true
		case providers.StateShuttingDown:
			err = c.teardown(ctx, r)
			dropped[r.Cluster] = true
		case providers.StateStopping:
			if err = c.stopMachine(ctx, *r); err == nil {
				r.State, r.PID = providers.StateStopped, 0
				err = c.st.writeRecord(*r)
			}
		default:
			continue
		}
		if err != nil {
			c.cfg.Logger.Warn("failed to complete an interrupted call", "cluster", r.Cluster, "id", r.ID, "state", r.State, "err", err)
		}
	}
	for cluster := range dropped {
		if err := c.dropNetworkIfUnused(ctx, cluster); err != nil {
			c.cfg.Logger.Warn("failed to remove an unused network", "cluster", cluster, "err", err)
		}
	}
	return nil
}

// errNoDockerd: the machine of an interrupted launch has no dockerd.
var errNoDockerd = errors.New("its dockerd is not running")

// resumeLaunch boots a pending machine to the end when its dockerd runs.
func (c *Cloud) resumeLaunch(ctx context.Context, r *record) error {
	if r.PID <= 0 || !alive(r.PID) || !c.ownsPID(r.ID, r.PID) {
		return errNoDockerd
	}
	ctx, cancel := context.WithTimeout(ctx, resumeTimeout)
	defer cancel()
	if err := c.waitDockerd(ctx, r.ID, nil); err != nil {
		return err
	}
	return c.finishBoot(ctx, r)
}
