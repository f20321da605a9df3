// Package lab builds real multi-node Docker Swarms for tests, through
// providers/local: every node is a dockerd in its own network namespace on
// this host, launched with init/join user-data scripts that drive the docker
// CLI, exactly as a cloud machine would join. It waits until every node is
// Ready, imports a tiny task image (lab/busybox) on each node, and tears
// everything down with t.Cleanup.
//
// Several test packages may run labs at the same time: each lab reserves a
// slot (its own /24 and state directory) under a file lock in
// /run/swarmsync-lab. CheckLeaks asserts, after a package's tests, that no
// namespace, veth, bridge, FORWARD rule, process or directory of the labs
// this process made is left.
//
// Test-only: never imported by product code. It must not touch anything it
// did not create (the host's own Docker engine, other processes' labs).
package lab
