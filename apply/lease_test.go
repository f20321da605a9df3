package apply

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
)

// leaseStore is a Swarm's lease label: a value with a version that is
// written only with the version read (SwarmUpdate's compare-and-swap), and
// the Swarm's clock.
type leaseStore struct {
	mu      sync.Mutex
	version int
	lease   *providers.Lease
	now     time.Time
}

func (s *leaseStore) read() (int, providers.LeaseState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := providers.LeaseState{Now: s.now}
	if s.lease != nil {
		st.Lease, st.Held = *s.lease, true
	}
	return s.version, st
}

// write is the compare-and-swap: false when the version moved.
func (s *leaseStore) write(version int, l *providers.Lease) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if version != s.version {
		return false
	}
	s.version++
	s.lease = l
	return true
}

func (s *leaseStore) advance(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

// leasedSwarm is a fake Swarm endpoint that holds its lease in a store.
type leasedSwarm struct {
	*fakeSwarm
	store *leaseStore
	ids   int
}

var _ providers.Leaser = (*leasedSwarm)(nil)

func (s *leasedSwarm) cas(decide func(providers.LeaseState) (*providers.Lease, error)) (*providers.Lease, error) {
	for range 5 {
		v, st := s.store.read()
		l, err := decide(st)
		if err != nil {
			return nil, err
		}
		if s.store.write(v, l) {
			return l, nil
		}
	}
	return nil, errors.New("update out of sequence")
}

func (s *leasedSwarm) AcquireLease(ctx context.Context, r providers.LeaseRequest) (providers.Lease, error) {
	s.ids++
	id := fmt.Sprintf("%016x", s.ids)
	l, err := s.cas(func(st providers.LeaseState) (*providers.Lease, error) { return providers.Taken(st, r, id, "") })
	if err != nil {
		return providers.Lease{}, err
	}
	return *l, nil
}

func (s *leasedSwarm) RenewLease(ctx context.Context, id string, ttl time.Duration) (providers.Lease, error) {
	l, err := s.cas(func(st providers.LeaseState) (*providers.Lease, error) { return providers.Renewed(st, id, ttl) })
	if err != nil {
		return providers.Lease{}, err
	}
	return *l, nil
}

func (s *leasedSwarm) ReleaseLease(ctx context.Context, id string) error {
	_, err := s.cas(func(st providers.LeaseState) (*providers.Lease, error) {
		if !st.Held || st.Lease.ID != id {
			return leaseOrNil(st), nil
		}
		return nil, nil
	})
	return err
}

func (s *leasedSwarm) ReadLease(ctx context.Context) (providers.LeaseState, error) {
	_, st := s.store.read()
	return st, nil
}

func (s *leasedSwarm) BreakLease(ctx context.Context, id string) (providers.Lease, error) {
	return providers.Lease{}, errors.New("not used")
}

// Dial hands out the leased endpoint of the Swarm just created.
func (s *leasedSwarm) Dial(ctx context.Context, inst providers.Instance) (providers.Swarm, error) {
	if _, err := s.fakeSwarm.Dial(ctx, inst); err != nil {
		return nil, err
	}
	return s, nil
}

// stuckClock never fires (renewals are driven by the tests).
type stuckClock struct{ *fakeClock }

func (stuckClock) After(time.Duration) <-chan time.Time { return nil }

func leasedWorld() (*world, *leasedSwarm) {
	w := newWorld()
	return w, &leasedSwarm{fakeSwarm: w.swarm, store: &leaseStore{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
}

// TestLeaseFence: the fence checks the lease before every mutating step;
// a lease broken mid-apply stops the apply at once, the rest not run.
func TestLeaseFence(t *testing.T) {
	w, ls := leasedWorld()
	bootstrapSwarm(t, w)
	w.swarm.calls = nil
	l := NewLease(LeaseOptions{Clock: stuckClock{w.clock}, TTL: time.Minute})
	if err := l.Acquire(context.Background(), ls); err != nil {
		t.Fatal(err)
	}
	d := w.deps()
	d.Swarm, d.Lease = ls, l
	// Another applier takes over once the launch is done.
	d.Hook = hookFunc(func(s plan.Step, r StepResult) {
		if s.Action == plan.ActionLaunch {
			ls.store.mu.Lock()
			ls.store.lease = &providers.Lease{ID: "0000000000000bad", Holder: "apply --auto", Host: "m2", PID: 7}
			ls.store.mu.Unlock()
		}
	})
	res, err := Run(context.Background(), workerPlan("general"), d)
	if !errors.Is(err, providers.ErrLeaseLost) || !strings.Contains(err.Error(), `held by "apply --auto" on m2 (pid 7)`) {
		t.Fatalf("Run = %v; want ErrLeaseLost naming the new holder", err)
	}
	got := map[string]Status{}
	for _, s := range res.Steps {
		got[string(s.Action)] = s.Status
	}
	if got["launch"] != StatusDone || got["await-join"] != StatusDone || got["label"] != StatusFailed {
		t.Errorf("step statuses %v: want the launch and the wait done, the label refused by the fence", got)
	}
	for _, c := range w.swarm.calls {
		if strings.HasPrefix(c, "update") {
			t.Errorf("a node was updated after the lease was lost: %s", c)
		}
	}

	// An expired lease fails the fence too, naming how long ago.
	ls.store.write(ls.store.version, &providers.Lease{ID: l.Current().ID, Expiry: ls.store.now.Add(-2 * time.Second)})
	if err := l.Check(context.Background()); !errors.Is(err, providers.ErrLeaseLost) || !strings.Contains(err.Error(), "expired 2s ago") {
		t.Errorf("Check of an expired lease = %v", err)
	}
}

// TestLeaseTakenAfterInit: bootstrap holds no lease (there is no Swarm);
// the apply takes it right after the launch that initialises the Swarm,
// and the later steps run under it.
func TestLeaseTakenAfterInit(t *testing.T) {
	w, ls := leasedWorld()
	d := w.deps()
	d.Dialer = ls
	d.Lease = NewLease(LeaseOptions{Clock: stuckClock{w.clock}})
	if _, err := Run(context.Background(), bootstrapPlan(), d); err != nil {
		t.Fatal(err)
	}
	if !d.Lease.Held() {
		t.Fatal("the lease is not held after the bootstrap")
	}
	if _, st := ls.store.read(); !st.Held || st.Lease.ID != d.Lease.Current().ID {
		t.Errorf("the Swarm's lease is %+v, want this apply's", st)
	}
	if err := d.Lease.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, st := ls.store.read(); st.Held {
		t.Errorf("the lease is still on the Swarm after its release: %+v", st.Lease)
	}
}

type hookFunc func(plan.Step, StepResult)

func (hookFunc) StepStarted(plan.Step, time.Time)         {}
func (f hookFunc) StepFinished(s plan.Step, r StepResult) { f(s, r) }

// TestLeaseModelTwoAppliers interleaves two appliers at random, one atomic
// Swarm call at a time: each reads the lease and later writes with the
// version it read (take, renew, release), checks it before each mutation
// (check and mutation together, as the fence does right before its call),
// stalls now and then for longer than the TTL, and crashes sometimes
// without releasing. Whatever the interleaving, the lease admits one: never
// do both believe they hold a live lease (what the compare-and-swap
// guarantees), a mutation is made only under the current, unexpired lease
// of its maker, and once another holder has mutated, an earlier holder
// never mutates again.
func TestLeaseModelTwoAppliers(t *testing.T) {
	const cases = 10000
	const ttl = 60 * time.Second
	for c := range cases {
		rng := rand.New(rand.NewPCG(uint64(c), 7))
		store := &leaseStore{now: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
		type applier struct {
			name     string
			held     string    // lease id this applier believes it holds
			until    time.Time // and until when (its last successful write)
			readV    int
			readSt   providers.LeaseState
			pending  string // "take", "renew", "release" after a read
			done     bool
			mutated  int
			attempts int
		}
		as := []*applier{{name: "a"}, {name: "b"}}
		var history []string // lease ids of the mutations, in order
		retired := map[string]bool{}
		for step := 0; step < 200 && !(as[0].done && as[1].done); step++ {
			x := as[rng.IntN(2)]
			if x.done {
				continue
			}
			switch r := rng.IntN(10); {
			case r == 0:
				store.advance(time.Duration(rng.IntN(int(2 * ttl))))
			case x.pending != "":
				// The write half of a read-then-write.
				var l *providers.Lease
				var err error
				switch x.pending {
				case "take":
					l, err = providers.Taken(x.readSt, providers.LeaseRequest{Holder: x.name, TTL: ttl}, fmt.Sprintf("%s-%d", x.name, step), "")
				case "renew":
					l, err = providers.Renewed(x.readSt, x.held, ttl)
				case "release":
					if x.readSt.Held && x.readSt.Lease.ID == x.held {
						l = nil
					} else {
						l = leaseOrNil(x.readSt)
					}
				}
				what := x.pending
				x.pending = ""
				if err != nil {
					if what == "renew" {
						x.held = ""
					}
					continue
				}
				if !store.write(x.readV, l) {
					continue // lost the race: read again
				}
				switch what {
				case "take", "renew":
					x.held, x.until = l.ID, l.Expiry
				case "release":
					retired[x.held] = true
					x.held, x.done = "", true
				}
			case x.held == "":
				if x.attempts++; x.attempts > 20 {
					x.done = true
					continue
				}
				x.readV, x.readSt = store.read()
				x.pending = "take"
			case r == 1 && x.mutated > 2:
				x.readV, x.readSt = store.read()
				x.pending = "release"
			case r == 2:
				x.readV, x.readSt = store.read()
				x.pending = "renew"
			case r == 3 && x.mutated > 0:
				x.done = true // crashed: the lease stays until it expires
			default:
				// Fence and mutation.
				_, st := store.read()
				if !st.Held || st.Lease.ID != x.held || st.Expired() {
					x.held = ""
					continue
				}
				if retired[x.held] {
					t.Fatalf("case %d: %s mutated under lease %s after its release", c, x.name, x.held)
				}
				if n := len(history); n > 0 && history[n-1] != x.held {
					for _, id := range history {
						if id == x.held {
							t.Fatalf("case %d: %s mutated under lease %s again after another holder did: %v", c, x.name, x.held, history)
						}
					}
				}
				history = append(history, x.held)
				x.mutated++
			}
			// At most one applier believes it holds a live lease.
			_, st := store.read()
			believers := 0
			for _, y := range as {
				if y.held != "" && !y.done && st.Now.Before(y.until) {
					believers++
				}
			}
			if believers > 1 {
				t.Fatalf("case %d, step %d: both appliers believe they hold a live lease (%s until %s, %s until %s)",
					c, step, as[0].held, as[0].until, as[1].held, as[1].until)
			}
		}
	}
}

// leaseOrNil is the lease of st as written back unchanged (nil for none).
func leaseOrNil(st providers.LeaseState) *providers.Lease {
	if !st.Held {
		return nil
	}
	l := st.Lease
	return &l
}
