package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/swarmsync/swarmsync/providers"
)

// Lease defaults. The TTL bounds how long a crashed holder blocks the next
// applier; renewing every third of it survives two missed renewals (an API
// call that hangs, a loaded host) before the lease lapses.
const (
	DefaultLeaseTTL = 60 * time.Second
	// MinLeaseTTL keeps a renewal period above a few API round trips.
	MinLeaseTTL = 3 * time.Second
)

// LeaseOptions configure a Lease.
type LeaseOptions struct {
	// Holder says what holds the lease ("apply", "apply --auto", "destroy").
	Holder string
	// TTL is how long the lease lasts after each renewal (default
	// DefaultLeaseTTL); it is renewed every TTL/3.
	TTL time.Duration
	// Clock times the renewals (default SystemClock). Expiry itself is
	// judged on the Swarm's clock.
	Clock  Clock
	Logger *slog.Logger
	// Host and PID name the holder (default: this host and process).
	Host string
	PID  int
}

// Lease is the apply lease of one process on one Swarm (DESIGN rule 8):
// Acquire takes it, a goroutine renews it every TTL/3 while it is held,
// Check tells the fence whether it is still held, Release drops it. A
// crashed holder's lease lapses after TTL. Safe for concurrent use.
type Lease struct {
	o LeaseOptions

	mu     sync.Mutex
	leaser providers.Leaser
	cur    providers.Lease
	held   bool
	stop   chan struct{}
	done   chan struct{}
}

// NewLease returns a Lease that is not held yet.
func NewLease(o LeaseOptions) *Lease {
	if o.TTL <= 0 {
		o.TTL = DefaultLeaseTTL
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Holder == "" {
		o.Holder = "apply"
	}
	return &Lease{o: o}
}

// renewEvery is the renewal period.
func (l *Lease) renewEvery() time.Duration { return l.o.TTL / 3 }

// leaserOf returns sw's lease operations.
func leaserOf(sw providers.Swarm) (providers.Leaser, error) {
	lr, ok := sw.(providers.Leaser)
	if !ok || sw == nil {
		return nil, fmt.Errorf("the Swarm endpoint (%T) cannot hold the apply lease", sw)
	}
	return lr, nil
}

// Acquire takes the lease through sw and starts renewing it. A lease held
// by another process fails with a *providers.LeaseHeldError that names it.
func (l *Lease) Acquire(ctx context.Context, sw providers.Swarm) error {
	lr, err := leaserOf(sw)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		return errors.New("the apply lease is already held by this process")
	}
	cur, err := lr.AcquireLease(ctx, providers.LeaseRequest{Holder: l.o.Holder, Host: l.o.Host, PID: l.o.PID, TTL: l.o.TTL})
	if err != nil {
		return err
	}
	l.leaser, l.cur, l.held = lr, cur, true
	if cur.TakenOver != "" {
		l.o.Logger.Warn("took over the apply lease", "lease", cur.ID, "from", cur.TakenOver)
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.renew(l.stop, l.done)
	return nil
}

// Held reports whether Acquire succeeded and Release has not run.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// Current is the lease as last written by this process.
func (l *Lease) Current() providers.Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// MoveTo makes the lease go through sw from now on (after leadership moved
// to sw's node; the lease itself is on the Swarm and moves with it) and
// renews it there at once, so the lease names sw's node as the holder's
// before the next step: a lease naming a node that is down may be taken
// over (providers.Taken). ErrLeaseLost when it was taken meanwhile.
func (l *Lease) MoveTo(ctx context.Context, sw providers.Swarm) error {
	lr, err := leaserOf(sw)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held {
		return fmt.Errorf("%w: this process does not hold it", providers.ErrLeaseLost)
	}
	cur, err := lr.RenewLease(ctx, l.cur.ID, l.o.TTL)
	if err != nil {
		return err
	}
	l.leaser, l.cur = lr, cur
	return nil
}

// renew renews the lease every TTL/3 until stop closes. A failed renewal
// is retried at the next period; the fence notices a lease that lapsed.
func (l *Lease) renew(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	for {
		select {
		case <-stop:
			return
		case <-l.o.Clock.After(l.renewEvery()):
		}
		l.mu.Lock()
		lr, id := l.leaser, l.cur.ID
		l.mu.Unlock()
		var cur providers.Lease
		err := recovered("the lease renewal", func() (err error) {
			cur, err = lr.RenewLease(ctx, id, l.o.TTL)
			return err
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.o.Logger.Warn("failed to renew the apply lease", "lease", id, "error", err.Error())
			if errors.Is(err, providers.ErrLeaseLost) {
				return
			}
			continue
		}
		l.mu.Lock()
		if l.leaser == lr { // else MoveTo renewed through the new endpoint meanwhile
			l.cur = cur
		}
		l.mu.Unlock()
	}
}

// Check returns nil when this process holds the lease and it has not
// expired on the Swarm's clock, else an error wrapping
// providers.ErrLeaseLost. It reads the lease from the Swarm.
func (l *Lease) Check(ctx context.Context) error {
	l.mu.Lock()
	lr, id, held := l.leaser, l.cur.ID, l.held
	l.mu.Unlock()
	if !held {
		return fmt.Errorf("%w: this process does not hold it", providers.ErrLeaseLost)
	}
	st, err := lr.ReadLease(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", providers.ErrLeaseLost, err)
	}
	switch {
	case !st.Held:
		return fmt.Errorf("%w: lease %s was removed (force-unlock?)", providers.ErrLeaseLost, id)
	case st.Lease.ID != id:
		return fmt.Errorf("%w: lease %s was replaced by %s, held by %q on %s (pid %d)", providers.ErrLeaseLost, id, st.Lease.ID, st.Lease.Holder, st.Lease.Host, st.Lease.PID)
	case st.Expired():
		return fmt.Errorf("%w: lease %s expired %s ago (not renewed in time)", providers.ErrLeaseLost, id, st.Now.Sub(st.Lease.Expiry).Round(time.Millisecond))
	}
	return nil
}

// Release stops renewing and removes the lease from the Swarm (if it is
// still this process's). Releasing a lease that is not held does nothing.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	if !l.held {
		l.mu.Unlock()
		return nil
	}
	l.held = false
	stop, done, lr, id := l.stop, l.done, l.leaser, l.cur.ID
	l.mu.Unlock()
	close(stop)
	<-done
	return lr.ReleaseLease(ctx, id)
}

// Hold takes a lease with options o through sw, runs f under it (pass the
// lease on as Deps.Lease) and releases it, whatever f returns. A lease held
// by another process fails with a *providers.LeaseHeldError before f runs.
func Hold(ctx context.Context, sw providers.Swarm, o LeaseOptions, f func(ctx context.Context, l *Lease) error) error {
	l := NewLease(o)
	if err := l.Acquire(ctx, sw); err != nil {
		return err
	}
	err := f(ctx, l)
	if rerr := l.Release(context.WithoutCancel(ctx)); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}
