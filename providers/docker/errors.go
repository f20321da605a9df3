package docker

import (
	"context"
	"errors"
	"regexp"
	"strings"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/swarmsync/swarmsync/providers"
)

// Errors the Swarm answers with, typed so callers can decide with errors.Is.
var (
	// ErrLastManager: Swarm refuses to demote the last manager.
	ErrLastManager = errors.New("swarm refused: it would demote the last manager")
	// ErrQuorum: Swarm refuses a demotion that would lose raft quorum.
	ErrQuorum = errors.New("swarm refused: the change would lose manager quorum")
	// ErrNodeNotDown: a node that is not down can be removed only with force.
	ErrNodeNotDown = errors.New("swarm refused: the node is not down; remove it with force or wait until it is down")
	// ErrNodeIsManager: a manager must be demoted before it is removed.
	ErrNodeIsManager = errors.New("swarm refused: the node is a manager; demote it before removing it")
	// ErrNotFound: no such node (or other object).
	ErrNotFound = providers.ErrNodeNotFound
	// ErrOutOfSequence: the update was based on a stale object version (the
	// retries of UpdateNode and RotateJoinTokens were used up).
	ErrOutOfSequence = errors.New("update out of sequence: the object changed meanwhile")
	// ErrNotManager: the endpoint's engine is in a swarm but not a manager.
	ErrNotManager = errors.New("the endpoint's node is not a swarm manager")
	// ErrNotInSwarm: the endpoint's engine is not part of a swarm.
	ErrNotInSwarm = errors.New("the endpoint's engine is not part of a swarm")
	// ErrAlreadyInSwarm: init or join on an engine that already is in one.
	ErrAlreadyInSwarm = errors.New("the endpoint's engine is already part of a swarm")
	// ErrInvalidJoinToken: the join token was refused (wrong, or rotated).
	ErrInvalidJoinToken = errors.New("swarm refused the join token (invalid or rotated)")
	// ErrUnavailable: a swarm manager did not answer (gRPC "Unavailable",
	// e.g. the engine's control.sock went away while its node stepped down
	// from manager). Whether the request took effect is unknown. The error
	// keeps the daemon's (redacted) text; test it with errors.Is.
	ErrUnavailable = errors.New("a swarm manager is unavailable; the request may or may not have taken effect")
)

// refusals maps daemon message fragments to typed errors. Order matters
// only where fragments could overlap; they do not.
var refusals = []struct {
	fragment string
	err      error
}{
	{"attempting to demote the last manager", ErrLastManager},
	{"loss of quorum", ErrQuorum},
	{"is not down and can't be removed", ErrNodeNotDown},
	{"must be demoted to worker before removal", ErrNodeIsManager},
	{"update out of sequence", ErrOutOfSequence},
	{"is not a swarm manager", ErrNotManager},
	{"is not part of a swarm", ErrNotInSwarm},
	{"is already part of a swarm", ErrAlreadyInSwarm},
	{"valid join token is necessary", ErrInvalidJoinToken},
	{"invalid join token", ErrInvalidJoinToken},
}

// tokenPattern matches Swarm join tokens (and unlock keys) anywhere in text.
var tokenPattern = regexp.MustCompile(`SWMTK[NY]-[0-9A-Za-z-]+`)

// redact removes join tokens and unlock keys from s.
func redact(s string) string { return tokenPattern.ReplaceAllString(s, "[redacted]") }

// daemonError is a daemon error that matched no known refusal. Its text is
// kept (minus any token) for the operator; the original error is not
// reachable through Unwrap, so a token cannot leak through the chain.
type daemonError struct {
	msg         string
	notFound    bool
	unavailable bool // gRPC "Unavailable": see ErrUnavailable
}

func (e *daemonError) Error() string { return e.msg }

// Is lets errors.Is(err, ErrNotFound) work for not-found answers, and
// errors.Is(err, ErrUnavailable) for a manager that did not answer.
func (e *daemonError) Is(target error) bool {
	return (target == ErrNotFound && e.notFound) || (target == ErrUnavailable && e.unavailable)
}

// classify turns a client error into a typed error (one of the Err values)
// or a redacted daemonError. nil stays nil.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	msg := err.Error()
	for _, r := range refusals {
		if strings.Contains(msg, r.fragment) {
			return r.err
		}
	}
	if cerrdefs.IsNotFound(err) {
		return ErrNotFound
	}
	return &daemonError{msg: redact(msg), unavailable: strings.Contains(msg, "code = Unavailable")}
}
