package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmsync/swarmsync/providers"
)

var _ providers.Leaser = (*Swarm)(nil)

// maxLeaseLabel bounds the lease label read back (input is hostile).
const maxLeaseLabel = 4096

// The lease lives in the swarm spec label providers.SwarmLabelLease. Every
// write is SwarmUpdate with the version just inspected: when another
// writer got in between, Swarm answers "update out of sequence" and the
// lease is read and judged again. Times come from the endpoint engine's
// clock (Info.SystemTime), read before each inspect: apply acts only
// through the leader, so every holder and contender judges by the
// leader's clock, not by its own host's.

// readLease reads the engine's clock, then the swarm object and its lease.
func (s *Swarm) readLease(ctx context.Context) (swarm.Swarm, providers.LeaseState, error) {
	info, err := s.cli.Info(ctx)
	if err != nil {
		return swarm.Swarm{}, providers.LeaseState{}, classify(err)
	}
	now, err := time.Parse(time.RFC3339Nano, info.SystemTime)
	if err != nil {
		return swarm.Swarm{}, providers.LeaseState{}, fmt.Errorf("the engine reports an unreadable system time %q: %w", info.SystemTime, err)
	}
	sw, err := s.cli.SwarmInspect(ctx)
	if err != nil {
		return swarm.Swarm{}, providers.LeaseState{}, classify(err)
	}
	st := providers.LeaseState{Now: now.UTC()}
	if v, ok := sw.Spec.Labels[providers.SwarmLabelLease]; ok {
		// An unreadable record counts as a lease that has expired: it
		// can be taken over, never renewed.
		st.Held = true
		var l providers.Lease
		if len(v) <= maxLeaseLabel && json.Unmarshal([]byte(v), &l) == nil && validLeaseID(l.ID) {
			st.Lease = l
		}
	}
	return sw, st, nil
}

// writeLease writes l (nil: removes the lease) with sw's version.
func (s *Swarm) writeLease(ctx context.Context, sw swarm.Swarm, l *providers.Lease) error {
	spec := sw.Spec
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if l == nil {
		delete(labels, providers.SwarmLabelLease)
	} else {
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		labels[providers.SwarmLabelLease] = string(b)
	}
	spec.Labels = labels
	return classify(s.cli.SwarmUpdate(ctx, sw.Version, spec, swarm.UpdateFlags{}))
}

// casLease reads the lease, lets decide say what to write (or fail), and
// writes it with the version read, again from the read on "update out of
// sequence".
func (s *Swarm) casLease(ctx context.Context, decide func(st providers.LeaseState) (*providers.Lease, error)) (*providers.Lease, error) {
	var last error
	for attempt := 1; attempt <= s.opts.attempts; attempt++ {
		sw, st, err := s.readLease(ctx)
		if err != nil {
			return nil, err
		}
		l, err := decide(st)
		if err != nil {
			return nil, err
		}
		if err = s.writeLease(ctx, sw, l); err == nil {
			return l, nil
		}
		if !errors.Is(err, ErrOutOfSequence) {
			return nil, err
		}
		last = err
	}
	return nil, fmt.Errorf("%d attempts: %w", s.opts.attempts, last)
}

// AcquireLease takes the apply lease (see providers.Leaser).
func (s *Swarm) AcquireLease(ctx context.Context, r providers.LeaseRequest) (providers.Lease, error) {
	if r.TTL <= 0 {
		return providers.Lease{}, fmt.Errorf("failed to take the apply lease: TTL %s must be positive", r.TTL)
	}
	id, err := newLeaseID()
	if err != nil {
		return providers.Lease{}, err
	}
	self, err := s.self(ctx)
	if err != nil {
		return providers.Lease{}, fmt.Errorf("failed to take the apply lease: %w", err)
	}
	l, err := s.casLease(ctx, func(st providers.LeaseState) (*providers.Lease, error) {
		if st.Held && !st.Expired() && st.Lease.Node != "" && st.Lease.Node != self {
			gone, err := s.nodeGone(ctx, st.Lease.Node)
			if err != nil {
				return nil, err
			}
			st.HolderGone = gone
		}
		return providers.Taken(st, r, id, self)
	})
	if errors.Is(err, providers.ErrLeaseHeld) {
		return providers.Lease{}, err
	}
	if err != nil {
		return providers.Lease{}, fmt.Errorf("failed to take the apply lease: %w", err)
	}
	s.opts.logger.Info("took the apply lease", "lease", l.ID, "expiry", l.Expiry, "taken_over", l.TakenOver)
	return *l, nil
}

// nodeGone says why node can no longer act for a lease holder ("is down",
// "has left the Swarm", "is unreachable"), or "" when it may still act. It
// asks the endpoint's engine, which answers from the Swarm's replicated
// node list; an error other than "no such node" leaves the lease alone.
func (s *Swarm) nodeGone(ctx context.Context, id string) (string, error) {
	n, _, err := s.cli.NodeInspectWithRaw(ctx, id)
	if err != nil {
		err = classify(err)
		if errors.Is(err, ErrNotFound) {
			return "has left the Swarm", nil
		}
		return "", fmt.Errorf("failed to inspect the lease holder's node %s: %w", id, err)
	}
	switch {
	case n.Status.State == swarm.NodeStateDown:
		return "is down", nil
	case n.ManagerStatus != nil && n.ManagerStatus.Reachability == swarm.ReachabilityUnreachable:
		return "is unreachable", nil
	}
	return "", nil
}

// RenewLease extends the lease id (see providers.Leaser and Renewed).
func (s *Swarm) RenewLease(ctx context.Context, id string, ttl time.Duration) (providers.Lease, error) {
	self, err := s.self(ctx)
	if err != nil {
		return providers.Lease{}, fmt.Errorf("failed to renew the apply lease %s: %w", id, err)
	}
	l, err := s.casLease(ctx, func(st providers.LeaseState) (*providers.Lease, error) {
		l, err := providers.Renewed(st, id, ttl)
		if l != nil {
			l.Node = self
		}
		return l, err
	})
	if err != nil {
		return providers.Lease{}, fmt.Errorf("failed to renew the apply lease %s: %w", id, err)
	}
	return *l, nil
}

// ReleaseLease removes the lease id, if it is still the current one.
func (s *Swarm) ReleaseLease(ctx context.Context, id string) error {
	errNotOurs := errors.New("not ours")
	_, err := s.casLease(ctx, func(st providers.LeaseState) (*providers.Lease, error) {
		if !st.Held || st.Lease.ID != id {
			return nil, errNotOurs
		}
		return nil, nil
	})
	if err != nil && !errors.Is(err, errNotOurs) {
		return fmt.Errorf("failed to release the apply lease %s: %w", id, err)
	}
	return nil
}

// ReadLease reads the current lease and the engine's clock.
func (s *Swarm) ReadLease(ctx context.Context) (providers.LeaseState, error) {
	_, st, err := s.readLease(ctx)
	if err != nil {
		return st, fmt.Errorf("failed to read the apply lease: %w", err)
	}
	return st, nil
}

// BreakLease removes the current lease if its id is id (force-unlock).
func (s *Swarm) BreakLease(ctx context.Context, id string) (providers.Lease, error) {
	var broken providers.Lease
	_, err := s.casLease(ctx, func(st providers.LeaseState) (*providers.Lease, error) {
		if !st.Held || st.Lease.ID != id {
			return nil, providers.ErrNoSuchLease
		}
		broken = st.Lease
		return nil, nil
	})
	if err != nil {
		return providers.Lease{}, fmt.Errorf("failed to break the apply lease %s: %w", id, err)
	}
	return broken, nil
}

func newLeaseID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to make a lease id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// validLeaseID reports whether id looks like newLeaseID's (16 hex digits).
func validLeaseID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
