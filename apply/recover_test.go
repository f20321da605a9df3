package apply

import (
	"context"
	"strings"
	"testing"
)

// A panic on one of apply's goroutines (here: the leadership watch calling
// into a provider) becomes an error naming where it happened; the process
// keeps running (a panic there would exit 2, "changes").
func TestPanicInLeadershipCheckIsAnError(t *testing.T) {
	r := &Reconciler{Leader: func(context.Context) (bool, error) { panic("index out of range [3] with length 3") }}
	leader, err := r.checkLeader(context.Background())
	if leader || err == nil || !strings.Contains(err.Error(), "internal error in the leadership check") {
		t.Fatalf("checkLeader = %v, %v; want not leader and the panic as an error", leader, err)
	}
	if st := r.Status(); st.Leader || !strings.Contains(st.LeaderError, "index out of range") {
		t.Errorf("status after a panicking check: leader %v, leader_error %q", st.Leader, st.LeaderError)
	}
}

func TestRecovered(t *testing.T) {
	if err := recovered("x", func() error { return nil }); err != nil {
		t.Errorf("no panic: %v", err)
	}
	err := recovered("the lease renewal", func() error { panic(42) })
	if err == nil || err.Error() != "internal error in the lease renewal (a bug in swarmsync, please report it): 42" {
		t.Errorf("panic: %v", err)
	}
}
