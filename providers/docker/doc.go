// Package docker implements providers.Swarm over the Docker Engine API (the
// moby v28 Go client, with API version negotiation so it talks to older
// engines too).
//
// It owns: turning Swarm nodes into providers.Node values at a constant
// number of API calls, the leader check, node updates with "update out of
// sequence" retries, promote/demote with waiting until they took effect,
// drain waiting, node removal, join tokens (read, rotate, and record the
// rotation as a swarm spec label in the same update), and init/join of a
// fresh engine. Swarm's refusals surface as typed errors (ErrLastManager,
// ErrQuorum, ErrNodeNotDown, ...), never as raw daemon text.
//
// It must not decide what to change (that is plan), read the wall clock to
// decide anything (waits poll on an injected ticker and are bounded by the
// caller's context), print, or let a join token reach an error or a log.
package docker
