package providers

import (
	"errors"
	"testing"
	"time"
)

// TestTaken: a live lease is refused unless its holder's node can no
// longer act; an expired or absent one is taken; the new lease names the
// taker's node and lasts the TTL from the Swarm's time.
func TestTaken(t *testing.T) {
	now := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	held := Lease{ID: "0123456789abcdef", Holder: "apply --auto", Host: "m1", PID: 7, Node: "node-a", Since: now.Add(-time.Minute), Expiry: now.Add(time.Minute)}
	req := LeaseRequest{Holder: "apply", Host: "ci", PID: 9, TTL: 30 * time.Second}
	for _, c := range []struct {
		name  string
		st    LeaseState
		taken bool
	}{
		{"none held", LeaseState{Now: now}, true},
		{"live, holder's node can act", LeaseState{Now: now, Held: true, Lease: held}, false},
		{"live, holder's node down", LeaseState{Now: now, Held: true, Lease: held, HolderGone: "is down"}, true},
		{"live, holder's node left", LeaseState{Now: now, Held: true, Lease: held, HolderGone: "has left the Swarm"}, true},
		{"expired at the read", LeaseState{Now: held.Expiry, Held: true, Lease: held}, true},
		{"unreadable record (zero lease, expired)", LeaseState{Now: now, Held: true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := Taken(c.st, req, "fedcba9876543210", "node-b")
			if !c.taken {
				var he *LeaseHeldError
				if !errors.As(err, &he) || !errors.Is(err, ErrLeaseHeld) || he.Lease != held || l != nil {
					t.Fatalf("Taken = %+v, %v; want a *LeaseHeldError naming %+v", l, err, held)
				}
				return
			}
			if err != nil {
				t.Fatalf("Taken: %v", err)
			}
			want := Lease{ID: "fedcba9876543210", Holder: "apply", Host: "ci", PID: 9, Node: "node-b", Since: c.st.Now, Renewed: c.st.Now, Expiry: c.st.Now.Add(req.TTL)}
			if c.st.HolderGone != "" {
				want.TakenOver = `lease 0123456789abcdef of "apply --auto" on host "m1" (pid 7), 1m0s before its expiry: its node node-a ` + c.st.HolderGone
			}
			if *l != want {
				t.Errorf("Taken = %+v, want %+v", *l, want)
			}
		})
	}
}

// TestRenewedKeepsHolder: a renewal moves the expiry only; another id is
// lost.
func TestRenewedKeepsHolder(t *testing.T) {
	now := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	held := Lease{ID: "0123456789abcdef", Holder: "apply", Node: "node-a", Since: now.Add(-time.Minute), Renewed: now.Add(-time.Second), Expiry: now.Add(time.Second)}
	st := LeaseState{Now: now, Held: true, Lease: held}
	l, err := Renewed(st, held.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := held
	want.Renewed, want.Expiry = now, now.Add(time.Minute)
	if *l != want {
		t.Errorf("Renewed = %+v, want %+v", *l, want)
	}
	if _, err := Renewed(st, "ffffffffffffffff", time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renewing another id: %v, want ErrLeaseLost", err)
	}
}
