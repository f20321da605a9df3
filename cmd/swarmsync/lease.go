package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/swarmsync/swarmsync/apply"
	"github.com/swarmsync/swarmsync/providers"
)

// leaseTTLEnv sets the apply lease's TTL when --lease-timeout is not given.
const leaseTTLEnv = "SWARMSYNC_LEASE_TTL"

// leaseFlags are the flags of the commands that take the apply lease.
type leaseFlags struct {
	ttl time.Duration
	set bool
}

func (f *leaseFlags) register(fs *pflag.FlagSet) {
	fs.DurationVar(&f.ttl, "lease-timeout", apply.DefaultLeaseTTL,
		"how long the apply lease on the Swarm outlives this process if it dies (renewed every third of it; default $"+leaseTTLEnv+", else 60s)")
}

// options returns the lease options for holder, from --lease-timeout, else
// $SWARMSYNC_LEASE_TTL, else the default.
func (f *leaseFlags) options(fs *pflag.FlagSet, holder string, logger *slog.Logger) (apply.LeaseOptions, error) {
	ttl := f.ttl
	if fl := fs.Lookup("lease-timeout"); fl == nil || !fl.Changed {
		if v := os.Getenv(leaseTTLEnv); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return apply.LeaseOptions{}, fmt.Errorf("%s=%q is not a duration: use e.g. 60s or 2m", leaseTTLEnv, v)
			}
			ttl = d
		}
	}
	if ttl < apply.MinLeaseTTL {
		return apply.LeaseOptions{}, fmt.Errorf("lease timeout %s is too short: use at least %s (--lease-timeout or %s)", ttl, apply.MinLeaseTTL, leaseTTLEnv)
	}
	return apply.LeaseOptions{Holder: holder, TTL: ttl, Logger: logger}, nil
}

// swarmExists reports whether sw is an endpoint of an active Swarm: only
// then is there a Swarm to hold the lease on. Bootstrap (no Swarm yet)
// relies on the launch token instead.
func swarmExists(ctx context.Context, sw providers.Swarm) bool {
	if sw == nil {
		return false
	}
	st, _ := sw.Observe(ctx)
	return st.Active
}

// takeLease takes the apply lease through sw when a Swarm exists. A lease
// held by another process is refused with its holder named; nothing has
// been changed then.
func takeLease(ctx context.Context, sw providers.Swarm, o apply.LeaseOptions) (*apply.Lease, error) {
	l := apply.NewLease(o)
	if !swarmExists(ctx, sw) {
		return l, nil
	}
	if err := l.Acquire(ctx, sw); err != nil {
		if errors.Is(err, providers.ErrLeaseHeld) {
			return nil, fmt.Errorf("refusing to %s, nothing was changed: %w", o.Holder, err)
		}
		return nil, err
	}
	return l, nil
}

// dropLease releases l if this process holds it; err is what the command
// returns so far.
func dropLease(ctx context.Context, l *apply.Lease, err error) error {
	if l == nil {
		return err
	}
	if rerr := l.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		return rerr
	}
	return err
}
