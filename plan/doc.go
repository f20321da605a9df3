// Package plan owns the observation snapshot (Observed, its canonical JSON
// codec and fingerprint), the plan (Plan, Step, Action and its JSON codec),
// the pure planner Compute and the safety invariants it guarantees, node ↔
// instance matching (Match), the config digest (ConfigDigest) and the
// cluster's health as status reports it (ClusterHealth).
//
// It must not do I/O, read the clock or use randomness, and must not import
// providers' SDKs: same inputs, same plan, byte for byte. "Now" is the
// observation's TakenAt.
//
// This comment is the one statement of the planner's policy; the code says
// only what it cannot. Files by concern: compute.go (Compute, the builder,
// the order of a pass), classify.go and member.go (the observation sorted
// into members), grace.go (nodes held within update.downGrace),
// joinfail.go (failed joins, the surge bound on launches), ghost.go (joins
// that never completed), budget.go (removal budget and blast-radius
// refusals), window.go (disruption windows), managers.go, workers.go (the
// groups),
// join.go and leave.go (the step sequences a machine joins and leaves by),
// labels.go, rotation.go (join tokens), victims.go, notes.go, status.go,
// network.go (network preflight, managed security group), targets.go
// (target groups and listeners).
//
// # Classification
//
// Nodes are matched to owned instances (Match). Then each machine is one of:
//   - kept: it counts toward its group (joined, or an instance launched less
//     than update.joinTimeout ago whose node has not joined: pending, awaited,
//     never relaunched before);
//   - stale: an instance whose node never joined within update.joinTimeout
//     (terminated; see "Failed joins" for when it is kept instead);
//   - held: a node that may come back (a reboot, a dockerd restart, a
//     network blip): a worker of a declared group whose node is Down, or a
//     manager that is not reachable, while its instance runs, and that has
//     not been Down for update.downGrace yet. "Down since" is the node's
//     DownSince (the Swarm's own record: the node object's update time
//     while it is Down, so restarts and leader changes keep it). An
//     unreachable manager whose node is not Down, and a Down node whose
//     observation does not record since when (a file from an older
//     version), are held until an observation shows them Down for the
//     grace: acting on less is acting on one glance. A held member counts
//     toward its group and is frozen, except that a scale-down may still
//     pick it (a Down node goes first; a stray manager never by a worker
//     group). A note names it, since when and when it would be replaced;
//     update.downGrace 0 holds nothing;
//   - broken: a worker of a declared group whose node has been Down for
//     update.downGrace while its instance runs;
//   - a dead manager: a raft member that is not reachable (owned, or a node
//     with our labels), past update.downGrace when its instance runs (no
//     grace when the cloud says its instance is gone);
//   - a stray manager: a manager whose instance is in a worker group;
//   - misplaced: a managers-group instance whose node is a worker (an
//     interrupted removal);
//   - an orphan: a node with our labels whose instance is gone: a Down node
//     whose instance is not live, or a worker not Down whose engine label
//     names an instance the cloud lists as terminated (its machine is known
//     to be gone; apply's remove-node waits until the Swarm sees it Down, so
//     a pass stopped between terminate and remove-node converges in the
//     next one, not two later);
//   - waiting: a node not Down whose instance is gone but that cannot be
//     removed yet: a reachable manager whose instance is terminated (removing
//     it needs a demotion, planned once it is unreachable), or a node without
//     the engine label that matches no live instance (nothing says which
//     instance was its own). A note names it; it is removed once Down;
//   - unlisted: a node not Down whose engine label names an instance the
//     cloud does not list at all. The cloud's listing is eventually
//     consistent (EC2 may omit an instance for a while after its launch)
//     while the heartbeat shows the machine runs: it is a member whose
//     instance is not shown yet. It counts toward its group (its
//     swarmsync.group label; a manager without it toward managers), is
//     frozen (nothing drains, demotes, removes, relabels or replaces it: its
//     instance cannot be checked) and a note says it is waited for. A worker
//     without the group label could belong to any worker group, so no worker
//     group launches or replaces while one exists (scale-down and
//     self-healing go on). Only a Down node whose instance is not listed is
//     treated as gone: a machine really gone stops its heartbeat;
//   - a ghost entry: a node no engine ever described and nothing labelled
//     (no hostname, no engine labels, no node labels; state unknown or down,
//     never Ready or disconnected, which only a node that registered with
//     a dispatcher becomes), created at a known time update.joinTimeout or
//     more before "now", matching no instance: a join that never completed
//     (the joining machine died, the leader that issued its certificate was
//     killed mid-join, the join timed out). Swarm creates the node object
//     when it issues the certificate, and writes the description and Ready
//     in one update when the engine registers; only a registered node gets
//     tasks. So a worker entry ran nothing and holds no vote: it is removed
//     (remove-node without drain, Step.Ghost; apply forces the removal of
//     an unknown one, which has no engine to talk to). A younger worker entry may be a join in
//     progress: left alone, a note counts it and says when it would be
//     removed. A manager entry may be a raft member: it is left (a young
//     one is foreign), and a note says how to remove an old one by hand
//     (docker node demote, docker node rm). An entry whose creation time is
//     not known cannot be dated: it is foreign;
//   - foreign: a node without our labels and no owned instance (but the
//     entries above), or the node of an unowned instance: never touched,
//     counted in the raft membership.
//
// # Order of a pass
//
// Ordering is carried by DependsOn.
//   - Managers are one chain of raft changes: dead managers are demoted and
//     removed first (always quorum-safe), then stray managers are demoted,
//     misplaced ones removed, stale instances terminated, orphans removed,
//     pending joins awaited, then the count is brought to the spec one
//     manager at a time, then out-of-date managers are replaced surge-first
//     (the new manager joins before the old one leaves). Every demotion is
//     checked against the quorum of the membership as planned so far; one
//     that would break it is not planned and a note says so. Scale-down
//     never picks the leader.
//   - A manager leaves as: [drain → await-drained, only when it runs tasks]
//     → demote → remove-node → terminate. A worker leaves as: drain →
//     await-drained → terminate → remove-node (apply waits until the node is
//     Down). Nodes already Down are not drained. A node whose availability
//     is drain already is not drained again but still awaited (a pass may
//     have stopped right after its drain step: the availability does not
//     say its tasks run elsewhere).
//   - The out-of-date leader is replaced last: its surge manager, the
//     join-token rotation and its demotion depend on every other step.
//   - Worker groups are planned one after another, independently: orphans
//     removed, stale instances terminated, pending joins awaited, the count
//     brought to the spec (one launch for what is missing), broken workers
//     replaced after that launch (so the group is never shorter than it is
//     now), then out-of-date workers replaced in batches of
//     update.parallelism, each launching up to update.maxSurge replacements
//     before its victims leave and the rest after them, each batch after
//     the previous one. Label drift is corrected on members that stay.
//   - Ghost entries are removed after the worker groups, each on its own.
//   - Victims (scale-down, replacement) are picked one at a time: out of
//     date first, then Down, then from the availability zone with the most
//     members of the group (so what remains stays spread), then the oldest,
//     then the smallest id (pickVictims).
//   - Lost quorum plans nothing and explains the manual recovery.
//   - The leader is the reachable manager with the leader flag: a Down
//     node may still carry the flag it had before it went Down.
//
// # Removal budget
//
// Removals the spec asks for (scale-down, prune) beyond
// safety.maxRemovalsPerApply, or emptying a group of running nodes without
// safety.allowEmpty, refuse the plan (RefusedError). Self-healing (dead and
// misplaced managers, orphans, ghost entries, stale instances and broken
// workers of declared groups) and the spec's removals are reserved first and planned
// in the order above, managers first (they unblock quorum); rolling
// replacements use only what is left. Every terminate of an instance and
// every remove-node of a node without an instance counts one removal
// (Step.Removal). What does not fit is left for later passes and a note
// says so. The terminate of an instance whose node never joined counts
// too, although it carries no workload: "never joined" is inferred from
// an instance no node matches, and a wrong inference (a Swarm endpoint
// that shows another swarm, nodes that lost the engine label) would
// otherwise terminate every machine of the cluster in one pass. The budget
// bounds that mistake; failed joins cannot run away under it, since a
// failing group launches nothing.
//
// # Failed joins
//
// A group's new machines fail to join when some live instance of its
// current config never joined within update.joinTimeout and no node of
// that config joined after the latest of them was launched (nodes'
// creation times against instances' launch times: the Swarm and the cloud
// are the only memory). Such a group stops launching: no machine is
// launched for its count, for a rolling replacement or for a broken
// member, until a machine of that config joins or the spec changes its
// config. The newest of those instances (up to the group's surge, at least
// one) are kept as the evidence, so the next pass sees the failure again
// instead of trying again; the others are terminated. A note and
// Plan.LaunchStopped say which group and instances; terminating the kept
// instances by hand is the way to try again. One failure stops the group:
// a retry would need to remember the failed attempt once it is
// terminated, and a group that launches every pass is exactly the runaway
// this prevents. A group whose joins work replaces its never-joined
// instances like any other removal, after terminating them.
//
// Surge bounds launches: a launch never brings the live instances of a
// group (those that never joined, are Down or are leaving included) beyond
// its count plus its surge (update.maxSurge for workers, one for
// managers). Instances that still run when the launch starts (kept as
// evidence, left by the removal budget, broken workers that leave after
// it, members of a scale-down) hold surge slots: they lower the launch
// that makes up the count (a later pass launches the rest) and the surge
// of rolling replacements, and the managers are not replaced while an
// instance that never joined remains. A manager is not picked by a scale-down
// or a replacement before its node has joined (its role is not known
// yet); a note says a later pass does it.
//
// # Disruption windows
//
// When the spec declares schedule.disruptionWindows and none is open at
// "now", only changes that take no capacity and no raft vote away are
// planned: launches, joins, labels, rotations, and self-healing of what is
// already dead (a Down node whose instance is gone, a broken worker, an
// instance whose node never joined, an unreachable manager whose node is
// Down, a ghost entry). A member whose node is Ready or about to join, or a reachable
// manager, waits for a window: scale-down, prune, rolling replacement,
// demoting a stray manager, removing an unreachable manager whose node
// still runs. A note counts what is held back and names when the next
// window opens.
//
// # Join tokens
//
// Both tokens are rotated in one step, after every join of the plan: when
// joinTokens.rotateAfterJoin is set and nodes join in the plan or some node
// joined after the rotation recorded on the Swarm (a pass killed between a
// join and its rotation is caught up by the next); and when
// schedule.rotateJoinTokens is due. Every rotation is recorded on the Swarm
// (rotation.go says how and why it is safe).
//
// # Network (aws, when the observation has one)
//
// Before anything else: every subnet and security group the groups name
// must exist (else the plan is refused naming the field); a group of more
// than one node whose subnets are all in one zone gets a note. Swarm needs
// 2377/tcp into managers from every member (joins, raft), and 7946/tcp,
// 7946/udp (gossip) and 4789/udp (overlay VXLAN) into every member from
// every member (SwarmRules). Without provider.aws.managedSecurityGroup the
// groups' own security groups must allow each of them for every pair of
// groups (a rule from one of the source group's security groups, or from a
// CIDR covering all its subnets): a missing one refuses the plan naming
// the exact rule to add. A group naming no security group gets the VPC's
// default one, which is not checked (a note says so). With
// managedSecurityGroup, the group tagged as the cluster's is created when
// missing and given the rules it lacks (self-referencing), as the first
// steps; every launch depends on them. Groups not tagged as the cluster's
// are never changed.
//
// # Load balancer targets and listeners
//
// A group's target groups are its spec's targetGroups and, for the load
// balancer's group, the target groups of the listeners swarmsync created.
// New machines are registered after their label step (a node receives
// traffic only once joined and labelled); a kept member that is Ready,
// labelled and not registered is registered. A member leaving whose
// instance is registered is deregistered, and the deregistration delay
// awaited, before anything else of its exit (before it is drained). With a
// load balancer, each port published in ingress mode (tcp or udp) gets one
// listener and target group, created with the group's registrable
// members; a listener swarmsync created for a port no longer published is
// deleted with its target group; listeners it did not create are never
// touched (a port they hold is noted).
package plan
