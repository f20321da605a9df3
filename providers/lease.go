package providers

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SwarmLabelLease is the swarm spec label that holds the apply lease, as
// the JSON of a Lease. It is written only with the swarm object's version
// (compare-and-swap on Swarm's raft), and it is not part of the observed
// state: Swarm.Observe leaves it out of SwarmState.Labels, so taking or
// renewing the lease never changes a plan or an observation's fingerprint.
const SwarmLabelLease = "swarmsync.lease"

// Lease is who holds the apply lease on a Swarm, and until when. Times are
// the Swarm's clock (the endpoint engine's, read at each write), never the
// holder's.
type Lease struct {
	// ID names this holding; force-unlock needs it.
	ID string `json:"id"`
	// Holder says what holds it, e.g. "apply" or "apply --auto".
	Holder string `json:"holder"`
	// Host and PID identify the holding process.
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// Node is the Swarm node ID of the endpoint the holder acts through,
	// as of the last write (empty in leases written before it existed).
	// Every mutating step of the holder goes through that node's engine
	// after a leadership check there, so a holder whose node is down, gone
	// or unreachable can no longer change the Swarm: its lease may be taken
	// over before it expires (see Taken).
	Node string `json:"node,omitempty"`
	// TakenOver, when set, says whose unexpired lease this one replaced
	// because that holder's node could no longer act (see Taken).
	TakenOver string `json:"taken_over,omitempty"`
	// Since is when the lease was taken, Renewed when it was last renewed
	// and Expiry when it lapses unless renewed again.
	Since   time.Time `json:"since"`
	Renewed time.Time `json:"renewed"`
	Expiry  time.Time `json:"expiry"`
}

// LeaseRequest asks for the lease.
type LeaseRequest struct {
	Holder string
	Host   string
	PID    int
	// TTL is how long the lease lasts after each write.
	TTL time.Duration
}

// LeaseState is the lease as read from the Swarm with the Swarm's time of
// the read.
type LeaseState struct {
	// Lease is the current lease; Held is false when there is none.
	Lease Lease
	Held  bool
	// Now is the Swarm's clock at the read.
	Now time.Time
	// HolderGone, when not empty, says why the holder's node can no longer
	// act ("is down", "has left the Swarm", "is unreachable"); set by a
	// Leaser about to take the lease, from the Swarm's node list.
	HolderGone string
}

// Expired reports whether a held lease has lapsed at the read.
func (s LeaseState) Expired() bool { return s.Held && !s.Now.Before(s.Lease.Expiry) }

// Errors of the lease operations, for errors.Is.
var (
	// ErrLeaseHeld: another holder has a lease that has not expired (the
	// error is a *LeaseHeldError).
	ErrLeaseHeld = errors.New("the apply lease is held")
	// ErrLeaseLost: the lease this process held is gone (expired and
	// taken, or force-unlocked) or has expired.
	ErrLeaseLost = errors.New("the apply lease was lost")
	// ErrNoSuchLease: force-unlock named a lease that is not the current one.
	ErrNoSuchLease = errors.New("no such lease")
)

// LeaseHeldError refuses a lease held by someone else.
type LeaseHeldError struct {
	Lease Lease
	// Now is the Swarm's clock when the lease was found.
	Now time.Time
}

func (e *LeaseHeldError) Error() string {
	l := e.Lease
	return fmt.Sprintf("the apply lease of this Swarm is held by %q on host %q (pid %d) since %s (%s ago, expires in %s, lease id %s): "+
		"wait for it to finish, or, if that process is gone, wait until the lease expires or run `swarmsync force-unlock %s`",
		l.Holder, l.Host, l.PID, l.Since.UTC().Format(time.RFC3339), e.Now.Sub(l.Since).Round(time.Second),
		l.Expiry.Sub(e.Now).Round(time.Second), l.ID, l.ID)
}

func (e *LeaseHeldError) Is(target error) bool { return target == ErrLeaseHeld }

// Leaser is implemented by a Swarm endpoint that can hold the apply lease on
// the Swarm (providers/docker does). Every write is a compare-and-swap on
// the swarm object's version; a lost race is re-read and judged again.
type Leaser interface {
	// AcquireLease takes the lease when no lease is held, the held one
	// has expired, or its holder's node is down, gone or unreachable (see
	// Taken); otherwise it fails with a *LeaseHeldError. The new lease gets
	// a fresh ID and records the endpoint's node.
	AcquireLease(ctx context.Context, r LeaseRequest) (Lease, error)
	// RenewLease extends the lease with this id by ttl from now (the
	// Swarm's clock) and records the endpoint's node as the holder's;
	// ErrLeaseLost when the current lease is not id.
	RenewLease(ctx context.Context, id string, ttl time.Duration) (Lease, error)
	// ReleaseLease removes the lease with this id; a lease that is no
	// longer id is left alone (no error).
	ReleaseLease(ctx context.Context, id string) error
	// ReadLease reads the current lease and the Swarm's clock.
	ReadLease(ctx context.Context) (LeaseState, error)
	// BreakLease removes the current lease whatever its state, if its id
	// is id (force-unlock); ErrNoSuchLease otherwise. It returns the
	// removed lease.
	BreakLease(ctx context.Context, id string) (Lease, error)
}

// Taken is the lease a holder writes when it takes the lease read as st,
// with a fresh id, through the endpoint of node; a *LeaseHeldError when st
// holds a lease that has not expired and whose holder's node can still act
// (st.HolderGone empty). Every Leaser decides with it, then writes with the
// version it read (so of two writers that read the same version, one
// fails).
//
// Taking over the lease of a holder whose node is down, gone or unreachable
// is what lets a new leader's daemon act within seconds of losing the old
// leader's machine, instead of a whole TTL later. It is safe because a
// holder changes the Swarm only through its node's engine, after checking
// there that it is the leader and that it still holds the lease: once the
// node is gone, every later step of the holder fails its fence. At most a
// cloud call already in flight (a launch or a termination, both chosen
// from the holder's own plan, drained first) can still land.
func Taken(st LeaseState, r LeaseRequest, id, node string) (*Lease, error) {
	if st.Held && !st.Expired() && st.HolderGone == "" {
		return nil, &LeaseHeldError{Lease: st.Lease, Now: st.Now}
	}
	l := &Lease{ID: id, Holder: r.Holder, Host: r.Host, PID: r.PID, Node: node, Since: st.Now, Renewed: st.Now, Expiry: st.Now.Add(r.TTL)}
	if st.Held && !st.Expired() {
		o := st.Lease
		l.TakenOver = fmt.Sprintf("lease %s of %q on host %q (pid %d), %s before its expiry: its node %s %s",
			o.ID, o.Holder, o.Host, o.PID, o.Expiry.Sub(st.Now).Round(time.Second), o.Node, st.HolderGone)
	}
	return l, nil
}

// Renewed is lease id extended by ttl from st's time; ErrLeaseLost when st
// holds no lease with that id. A lease that expired but that nobody took
// is renewed: no one else can have acted meanwhile.
func Renewed(st LeaseState, id string, ttl time.Duration) (*Lease, error) {
	if !st.Held || st.Lease.ID != id {
		return nil, ErrLeaseLost
	}
	l := st.Lease
	l.Renewed, l.Expiry = st.Now, st.Now.Add(ttl)
	return &l, nil
}
