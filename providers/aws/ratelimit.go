package aws

import (
	"context"
	"fmt"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Rate is a token bucket: Burst tokens at most, refilled at PerSecond.
type Rate struct {
	Burst     float64
	PerSecond float64
}

// DefaultBudgets are EC2's published request buckets per account and
// region, keyed by operation name. Operations not listed use
// DefaultBudgets[""] (the non-mutating bucket).
var DefaultBudgets = map[string]Rate{
	"":                   {Burst: 100, PerSecond: 20},
	"DescribeInstances":  {Burst: 100, PerSecond: 20},
	"RunInstances":       {Burst: 5, PerSecond: 2},
	"TerminateInstances": {Burst: 100, PerSecond: 5},
	"CreateTags":         {Burst: 50, PerSecond: 5},
}

// InstanceBudget is EC2's RunInstances resource bucket: instances launched.
var InstanceBudget = Rate{Burst: 1000, PerSecond: 2}

// bucket is a token bucket on an injected clock.
type bucket struct {
	mu     sync.Mutex
	rate   Rate
	tokens float64
	last   time.Time
}

func newBucket(r Rate, now time.Time) *bucket {
	return &bucket{rate: r, tokens: r.Burst, last: now}
}

// wait takes n tokens, sleeping on clock until they are there.
func (b *bucket) wait(ctx context.Context, clock Clock, n float64) error {
	if n > b.rate.Burst {
		return fmt.Errorf("failed to take %v tokens: the bucket holds at most %v", n, b.rate.Burst)
	}
	for {
		b.mu.Lock()
		now := clock.Now()
		if el := now.Sub(b.last); el > 0 {
			b.tokens = min(b.rate.Burst, b.tokens+el.Seconds()*b.rate.PerSecond)
			b.last = now
		}
		if b.tokens >= n {
			b.tokens -= n
			b.mu.Unlock()
			return nil
		}
		need := time.Duration((n - b.tokens) / b.rate.PerSecond * float64(time.Second))
		b.mu.Unlock()
		if need < time.Millisecond {
			need = time.Millisecond
		}
		if err := clock.Sleep(ctx, need); err != nil {
			return err
		}
	}
}

// limiter holds one bucket per operation budget.
type limiter struct {
	clock     Clock
	buckets   map[string]*bucket
	instances *bucket
}

func newLimiter(clock Clock, budgets map[string]Rate) *limiter {
	now := clock.Now()
	l := &limiter{clock: clock, buckets: map[string]*bucket{}, instances: newBucket(InstanceBudget, now)}
	for op, r := range DefaultBudgets {
		l.buckets[op] = newBucket(r, now)
	}
	for op, r := range budgets {
		l.buckets[op] = newBucket(r, now)
	}
	return l
}

// waitRequest takes one request token for op.
func (l *limiter) waitRequest(ctx context.Context, op string) error {
	b, ok := l.buckets[op]
	if !ok {
		b = l.buckets[""]
	}
	if err := b.wait(ctx, l.clock, 1); err != nil {
		return fmt.Errorf("failed to wait for the %s request budget: %w", op, err)
	}
	return nil
}

// waitInstances takes n tokens from the instance-launch bucket.
func (l *limiter) waitInstances(ctx context.Context, n int) error {
	if err := l.instances.wait(ctx, l.clock, float64(n)); err != nil {
		return fmt.Errorf("failed to wait for the RunInstances instance budget: %w", err)
	}
	return nil
}

// addMiddleware puts the limiter after the SDK's retry middleware, so every
// HTTP attempt (retries included) spends a token, as it does on EC2.
func (l *limiter) addMiddleware(stack *middleware.Stack) error {
	mw := middleware.FinalizeMiddlewareFunc("swarmsyncRateLimit", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if err := l.waitRequest(ctx, awsmiddleware.GetOperationName(ctx)); err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, err
		}
		return next.HandleFinalize(ctx, in)
	})
	if _, ok := stack.Finalize.Get("Retry"); ok {
		return stack.Finalize.Insert(mw, "Retry", middleware.After)
	}
	return stack.Finalize.Add(mw, middleware.After)
}
