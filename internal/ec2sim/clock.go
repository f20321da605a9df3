package ec2sim

import (
	"context"
	"sync"
	"time"
)

// Clock is the emulator's source of time.
type Clock interface {
	Now() time.Time
}

// realClock reads the wall clock; it is the default when no clock is given.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// VirtualClock is a manual clock for tests. Sleep advances it instead of
// waiting, so a client that sleeps on it (a rate limiter) runs at once while
// the emulator sees time pass. It is safe for concurrent use.
type VirtualClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

// NewVirtualClock returns a clock that starts at start.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now returns the clock's current time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *VirtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Sleep advances the clock by d (unless ctx is done) and records it.
func (c *VirtualClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept += d
	return nil
}

// Slept returns the total duration passed to Sleep.
func (c *VirtualClock) Slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}
