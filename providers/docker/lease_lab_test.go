package docker_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/plan"
	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/providers/docker"
)

// TestLease runs the apply lease on a real swarm: contenders racing
// through their own clients (one wins, the others are refused with the
// holder named), renewal, a join-token rotation that keeps the lease,
// expiry judged on the engine's clock, release and force-unlock; and the
// lease never shows in the observation or its fingerprint.
func TestLease(t *testing.T) {
	l := startLabs(t, lab.Options{Managers: 1, Cluster: "lease", NoImage: true})[0]
	ctx := ctxFor(t, 2*time.Minute)
	client := func() *docker.Swarm { return must(l.Swarm(l.Managers[0].ID))(t) }
	a := client()
	req := func(holder string, ttl time.Duration) providers.LeaseRequest {
		return providers.LeaseRequest{Holder: holder, Host: "host-" + holder, PID: len(holder), TTL: ttl}
	}
	before := must(a.Observe(ctx))(t)

	// Five contenders at once, each through its own client.
	var wg sync.WaitGroup
	leases := make([]providers.Lease, 5)
	errs := make([]error, 5)
	for i := range leases {
		c := client()
		wg.Go(func() { leases[i], errs[i] = c.AcquireLease(ctx, req("contender"+string(rune('a'+i)), time.Minute)) })
	}
	wg.Wait()
	var won []int
	for i, err := range errs {
		var held *providers.LeaseHeldError
		switch {
		case err == nil:
			won = append(won, i)
		case errors.As(err, &held):
			if !strings.Contains(err.Error(), "host-contender") || !strings.Contains(err.Error(), "force-unlock") {
				t.Errorf("contender %d refused with %q: want the holder's host and the way out", i, err)
			}
		default:
			t.Errorf("contender %d: %v", i, err)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d of 5 contenders took the lease, want exactly 1 (errors %v)", len(won), errs)
	}
	first := leases[won[0]]
	st := must(a.ReadLease(ctx))(t)
	if !st.Held || st.Lease.ID != first.ID || st.Expired() {
		t.Fatalf("lease on the swarm %+v, want the winner's %+v, not expired", st, first)
	}
	if d := first.Expiry.Sub(first.Since); d != time.Minute {
		t.Errorf("lease lasts %s, want the TTL of 1m", d)
	}
	if skew := first.Since.Sub(time.Now()).Abs(); skew > 5*time.Second {
		t.Errorf("lease taken at %s on the engine's clock, %s from this host's", first.Since, skew)
	}

	// The lease is not cluster state.
	after := must(a.Observe(ctx))(t)
	if _, ok := after.Labels[providers.SwarmLabelLease]; ok {
		t.Errorf("Observe shows the lease label: %v", after.Labels)
	}
	fp := func(s providers.SwarmState) string {
		return plan.Observed{Cluster: l.Cluster, Swarm: s}.Canonical().Fingerprint()
	}
	if fp(before) != fp(after) {
		t.Error("taking the lease changed the observation's fingerprint")
	}

	// Renewal extends it; a rotation that rewrites the swarm spec keeps it.
	renewed := must(a.RenewLease(ctx, first.ID, 2*time.Minute))(t)
	if !renewed.Expiry.After(first.Expiry) || renewed.Since != first.Since {
		t.Errorf("renewed lease %+v from %+v: want a later expiry, the same start", renewed, first)
	}
	if err := a.RotateAndRecord(ctx, providers.JoinTokenRotation{Worker: true, Manager: true}); err != nil {
		t.Fatal(err)
	}
	if st := must(a.ReadLease(ctx))(t); st.Lease.ID != first.ID {
		t.Fatalf("after a join-token rotation the lease is %+v, want %s", st.Lease, first.ID)
	}
	if _, err := a.RenewLease(ctx, "not-the-id", time.Minute); !errors.Is(err, providers.ErrLeaseLost) {
		t.Errorf("renewing another id: %v, want ErrLeaseLost", err)
	}
	if err := a.ReleaseLease(ctx, "not-the-id"); err != nil {
		t.Errorf("releasing another id: %v, want no error", err)
	}
	if st := must(a.ReadLease(ctx))(t); st.Lease.ID != first.ID {
		t.Fatalf("releasing another id removed the lease: %+v", st)
	}
	if err := a.ReleaseLease(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if st := must(a.ReadLease(ctx))(t); st.Held {
		t.Fatalf("lease still there after its release: %+v", st.Lease)
	}

	// A short lease lapses on the engine's clock and can then be taken;
	// its former holder can no longer renew it.
	short := must(a.AcquireLease(ctx, req("short", time.Second)))(t)
	if _, err := client().AcquireLease(ctx, req("other", time.Minute)); !errors.Is(err, providers.ErrLeaseHeld) {
		t.Fatalf("taking a live lease: %v, want ErrLeaseHeld", err)
	}
	if err := lab.Poll(ctx, func() (bool, error) {
		st, err := a.ReadLease(ctx)
		return st.Expired(), err
	}); err != nil {
		t.Fatal(err)
	}
	b := client()
	next := must(b.AcquireLease(ctx, req("next", time.Minute)))(t)
	if _, err := a.RenewLease(ctx, short.ID, time.Minute); !errors.Is(err, providers.ErrLeaseLost) {
		t.Errorf("renewing a lease taken over after expiry: %v, want ErrLeaseLost", err)
	}

	// Force-unlock needs the current id.
	if _, err := a.BreakLease(ctx, short.ID); !errors.Is(err, providers.ErrNoSuchLease) {
		t.Errorf("breaking a former lease: %v, want ErrNoSuchLease", err)
	}
	broken := must(a.BreakLease(ctx, next.ID))(t)
	if broken.Holder != "next" {
		t.Errorf("broke %+v, want the lease of \"next\"", broken)
	}
	if st := must(a.ReadLease(ctx))(t); st.Held {
		t.Errorf("lease still there after force-unlock: %+v", st.Lease)
	}
}

// TestLeaseTakeover: a lease names the node its holder acts through. While
// that node is up, nobody else takes the lease; once its machine stops
// (unreachable, then Down), a contender through the leader takes it at
// once, long before its TTL; a renewal through another manager records
// that manager as the holder's node.
func TestLeaseTakeover(t *testing.T) {
	l := startLabs(t, lab.Options{Managers: 3, Cluster: "takeover", NoImage: true, Heartbeat: time.Second})[0]
	ctx := ctxFor(t, 4*time.Minute)
	leader := must(l.Leader(ctx))(t)
	leaderID := must(leader.SelfID(ctx))(t)
	var follower, third providers.Instance
	var followerSw, thirdSw *docker.Swarm
	for _, m := range l.Managers {
		sw := must(l.Swarm(m.ID))(t)
		if must(sw.SelfID(ctx))(t) == leaderID {
			continue
		}
		if followerSw == nil {
			follower, followerSw = m, sw
		} else {
			third, thirdSw = m, sw
		}
	}
	if thirdSw == nil {
		t.Fatalf("no two followers among %d managers", len(l.Managers))
	}
	req := func(holder string) providers.LeaseRequest {
		return providers.LeaseRequest{Holder: holder, Host: "host-" + holder, PID: 1, TTL: 10 * time.Minute}
	}
	// The holder acts through a follower's endpoint (the lease write is
	// forwarded to the leader); the lease names that follower's node.
	held := must(followerSw.AcquireLease(ctx, req("holder")))(t)
	followerID := must(followerSw.SelfID(ctx))(t)
	if held.Node != followerID {
		t.Fatalf("lease names node %q, want the holder's endpoint node %s", held.Node, followerID)
	}
	if _, err := leader.AcquireLease(ctx, req("contender")); !errors.Is(err, providers.ErrLeaseHeld) {
		t.Fatalf("taking a live lease whose holder's node is up: %v, want ErrLeaseHeld", err)
	}

	// The holder's machine stops: its lease is taken over, not waited out.
	stopped := time.Now()
	if err := l.Cloud.Stop(ctx, l.Cluster, follower.ID); err != nil {
		t.Fatal(err)
	}
	var next providers.Lease
	refused := 0
	if err := lab.Poll(ctx, func() (bool, error) {
		var err error
		next, err = leader.AcquireLease(ctx, req("contender"))
		if errors.Is(err, providers.ErrLeaseHeld) {
			refused++
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		t.Fatalf("no takeover after the holder's node stopped: %v", err)
	}
	t.Logf("FIGURE holder's machine stopped → lease taken over: %s (%d refusals first)", time.Since(stopped).Round(10*time.Millisecond), refused)
	if next.Node != leaderID || next.ID == held.ID {
		t.Errorf("taken lease %+v: want a new id naming the leader's node %s", next, leaderID)
	}
	if !strings.Contains(next.TakenOver, held.ID) || !strings.Contains(next.TakenOver, followerID) {
		t.Errorf("taken lease says %q: want the lease (%s) and node (%s) it replaced", next.TakenOver, held.ID, followerID)
	}
	if !next.Since.Before(held.Expiry) {
		t.Errorf("taken at %s, after the old lease's expiry %s: that is no takeover", next.Since, held.Expiry)
	}
	if _, err := followerSw.RenewLease(ctx, held.ID, time.Minute); err == nil {
		t.Error("the stopped holder's endpoint renewed a lease that was taken over")
	}

	// A renewal through another manager names that manager.
	must(thirdSw.RenewLease(ctx, next.ID, 10*time.Minute))(t)
	st := must(leader.ReadLease(ctx))(t)
	if thirdID := must(thirdSw.SelfID(ctx))(t); st.Lease.Node != thirdID || st.Lease.ID != next.ID {
		t.Errorf("after a renewal through %s the lease is %+v, want node %s", third.ID, st.Lease, thirdID)
	}
	// That node is up: the lease is held against everyone else again.
	if _, err := leader.AcquireLease(ctx, req("late")); !errors.Is(err, providers.ErrLeaseHeld) {
		t.Errorf("taking a live lease whose holder's node is up: %v, want ErrLeaseHeld", err)
	}
}
