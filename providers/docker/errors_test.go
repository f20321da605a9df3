package docker

import (
	"errors"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"
)

func TestClassify(t *testing.T) {
	const tok = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"
	cases := []struct {
		name string
		in   error
		want error
	}{
		{"last manager", errors.New("Error response from daemon: rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm"), ErrLastManager},
		{"quorum", errors.New("rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum"), ErrQuorum},
		{"not down", errors.New("rpc error: code = FailedPrecondition desc = node abc is not down and can't be removed"), ErrNodeNotDown},
		{"manager removal", errors.New("rpc error: code = FailedPrecondition desc = node abc is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal"), ErrNodeIsManager},
		{"out of sequence", errors.New("rpc error: code = Unknown desc = update out of sequence"), ErrOutOfSequence},
		{"worker endpoint", errors.New("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state."), ErrNotManager},
		{"no swarm", errors.New("This node is not part of a swarm"), ErrNotInSwarm},
		{"not found", cerrdefs.ErrNotFound.WithMessage("node xyz not found"), ErrNotFound},
		{"bad token", errors.New("rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"), ErrInvalidJoinToken},
		{"control socket gone", errors.New(`Error response from daemon: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing dial unix /var/run/docker/swarm/control.sock: connect: no such file or directory"`), ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.in)
			if !errors.Is(got, tc.want) {
				t.Errorf("classify(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	t.Run("unknown keeps text without tokens", func(t *testing.T) {
		got := classify(errors.New("something odd with " + tok + " inside"))
		if strings.Contains(got.Error(), "SWMTKN-1") || !strings.Contains(got.Error(), "something odd") {
			t.Errorf("classify kept token or lost text: %q", got)
		}
		if errors.Is(got, ErrNotFound) || errors.Unwrap(got) != nil {
			t.Errorf("unknown error must be opaque, got %#v", got)
		}
	})
	t.Run("unavailable keeps its text without tokens", func(t *testing.T) {
		got := classify(errors.New("rpc error: code = Unavailable desc = manager at " + tok + " gone"))
		if !errors.Is(got, ErrUnavailable) || errors.Is(got, ErrNotFound) || !strings.Contains(got.Error(), "manager at") || strings.Contains(got.Error(), "SWMTKN-1") {
			t.Errorf("classify(unavailable) = %q (is ErrUnavailable %v)", got, errors.Is(got, ErrUnavailable))
		}
	})
}

func TestDrainedStates(t *testing.T) {
	// Exercised against real tasks in the lab tests; here only the
	// state table is checked.
	for _, s := range []string{"new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"} {
		if terminal(swarmState(s)) {
			t.Errorf("%s must not count as terminal", s)
		}
	}
	for _, s := range []string{"complete", "shutdown", "failed", "rejected", "remove", "orphaned"} {
		if !terminal(swarmState(s)) {
			t.Errorf("%s must count as terminal", s)
		}
	}
}

func swarmState(s string) swarm.TaskState { return swarm.TaskState(s) }
