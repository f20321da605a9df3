// Package apply executes a plan: it runs the plan's steps in dependency
// order (independent steps in parallel within the update policy's
// parallelism), one concern per step (launch, await-join, label, drain,
// await-drained, demote, promote, remove-node, terminate,
// rotate-join-token), waits with an injected clock, checks before every
// mutating step that its Docker endpoint's node is the Swarm leader, renders
// user data, and applies the failure policy. It also owns the reconcile loop
// behind `apply --auto`.
//
// It must not decide what to change (that is plan), print anything (progress
// goes to a Hook; views print), store state (the cloud and the Swarm are the
// state), or let a join token reach a log, an error, a result or an event.
package apply
