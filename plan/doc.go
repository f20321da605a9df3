// Package plan owns the observation snapshot (Observed, its canonical JSON
// codec and fingerprint), the plan (Plan, Step, Action and its JSON codec),
// the pure planner Compute and the safety invariants it guarantees, node ↔
// instance matching (Match) and the config digest (ConfigDigest).
//
// It must not do I/O, read the clock or use randomness, and must not import
// providers' SDKs: same inputs, same plan, byte for byte. "Now" is the
// observation's TakenAt.
//
// How Compute orders a plan (ordering is carried by DependsOn):
//   - Managers are one chain of raft changes: unreachable members are
//     demoted and removed first (always quorum-safe), then pending joins are
//     awaited, then the count is brought to the spec one manager at a time,
//     then out-of-date managers are replaced surge-first. Every demotion is
//     checked against the quorum of the membership as planned so far.
//   - A manager leaves as: [drain → await-drained, only when it runs tasks]
//     → demote → remove-node → terminate. A worker leaves as: drain →
//     await-drained → terminate → remove-node (apply waits until the node is
//     Down). Nodes already Down are not drained. A node whose availability
//     is drain already is not drained again but still awaited (a pass may
//     have stopped right after its drain step: the availability does not
//     say its tasks run elsewhere).
//   - The out-of-date leader is replaced last: its surge manager, the
//     join-token rotation and its demotion depend on every other step.
//   - Worker replacements run in batches of update.parallelism, each
//     launching up to update.maxSurge replacements before its victims leave.
//   - Removals the spec asks for (scale-down, prune) beyond
//     safety.maxRemovalsPerApply, or emptying a group without
//     safety.allowEmpty, refuse the plan (RefusedError). Self-healing and
//     replacements are bounded by what is left of the limit and continue in
//     later passes (a note says so).
//   - Self-healing: a Down node whose instance is gone is removed, and so
//     is a worker node that is still Ready while the cloud lists the
//     instance its engine label names as terminated (or shutting down):
//     the instance is known gone, and apply's remove-node waits until the
//     Swarm sees the node Down (a pass stopped between terminate and
//     remove-node converges in the next one, not two later); an
//     instance whose node never joined within update.joinTimeout is
//     terminated; a worker whose node is Down while its instance runs,
//     launched more than update.joinTimeout ago, is replaced (the launch
//     that makes up the count first, then terminate and remove-node). The
//     observation has no "Down since", so the instance's age stands in for
//     it. All of it counts against safety.maxRemovalsPerApply.
//   - The cloud's listing is eventually consistent (an instance may be
//     missing from it for a while after its launch). A node that is not
//     Down and whose engine label names an instance the cloud does not list
//     at all is a member whose instance is not shown yet: it counts toward
//     its group (its swarmsync.group label; managers without it count
//     toward the managers group), nothing in the pass touches it, and a
//     note says it is waited for. A worker without the group label could
//     belong to any worker group, so no worker group launches or replaces
//     while one exists. Only a Down node, or one whose instance is listed
//     as terminated, is treated as one whose instance is gone (self-healing
//     above); a reachable manager whose instance is terminated (removing it
//     needs a demotion) and a node without the engine label that matches
//     no live instance wait until they are Down. In the other direction, a listed
//     instance whose node has not appeared counts toward its group and is
//     awaited until update.joinTimeout, never relaunched before.
//   - Lost quorum plans nothing and explains the manual recovery.
//   - When the spec declares schedule.disruptionWindows and none is open at
//     "now", only changes that take no capacity and no raft vote away are
//     planned (launches, joins, labels, rotations, and self-healing of what
//     is already dead); the rest is held back and a note names when the
//     next window opens.
//   - Join tokens are rotated in one step that rotates both, after every
//     join of the plan, when joinTokens.rotateAfterJoin is set and nodes
//     join in the plan or some node joined after the rotation recorded on
//     the Swarm (the swarm label swarmsync.join-tokens-rotated, else the
//     swarm's creation; the node that created the swarm used no token):
//     a pass killed between a join and its rotation is caught up by the
//     next. And when schedule.rotateJoinTokens is due, i.e. its latest
//     activation at or before "now" is after the recorded rotation; the
//     step then carries observed.TakenAt as the least time to record.
//     Every rotation is recorded, no earlier than the creation of every
//     node the provider lists (the manager's clock); see rotation.go.
package plan
