package providers

import (
	"context"
	"errors"
)

// ErrNoSwarm is what NoSwarm answers to everything but Observe.
var ErrNoSwarm = errors.New("the cluster has no manager yet, so there is no Swarm endpoint")

// NoSwarm stands for "no manager exists yet": it observes an inactive swarm
// (so the planner bootstraps) and refuses every other call with ErrNoSwarm.
type NoSwarm struct{}

var _ Swarm = NoSwarm{}

// Observe reports an inactive swarm.
func (NoSwarm) Observe(context.Context) (SwarmState, error) { return SwarmState{}, nil }

// IsLeader is never true: there is no leader.
func (NoSwarm) IsLeader(context.Context) (bool, error) { return false, ErrNoSwarm }

// JoinTokens refuses: there is no swarm to join.
func (NoSwarm) JoinTokens(context.Context) (JoinTokens, error) { return JoinTokens{}, ErrNoSwarm }

// RotateJoinTokens refuses.
func (NoSwarm) RotateJoinTokens(context.Context, bool, bool) error { return ErrNoSwarm }

// UpdateNode refuses.
func (NoSwarm) UpdateNode(context.Context, string, NodeChange) error { return ErrNoSwarm }

// Demote refuses.
func (NoSwarm) Demote(context.Context, string) error { return ErrNoSwarm }

// Promote refuses.
func (NoSwarm) Promote(context.Context, string) error { return ErrNoSwarm }

// WaitDrained refuses.
func (NoSwarm) WaitDrained(context.Context, string) error { return ErrNoSwarm }

// RemoveNode refuses.
func (NoSwarm) RemoveNode(context.Context, string, bool) error { return ErrNoSwarm }
