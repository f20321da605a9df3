// Package apply executes a plan: it runs the plan's steps in dependency
// order (independent steps in parallel within the update policy's
// parallelism), one concern per step (launch, await-join, label, drain,
// await-drained, demote, promote, remove-node, terminate,
// rotate-join-token), waits with an injected clock, checks before every
// mutating call that its Docker endpoint's node is the Swarm leader and that
// it still holds the apply lease (Lease: one applier at a time, recorded on
// the Swarm, renewed every TTL/3, lapsing after the TTL when its holder
// dies), renders user data, and applies the failure policy. It also owns the reconcile loop
// behind `apply --auto`.
//
// It must not decide what to change (that is plan), print anything (progress
// goes to a Hook; views print), store state (the cloud and the Swarm are the
// state), or let a join token reach a log, an error, a result or an event.
package apply
