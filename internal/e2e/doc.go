// Package e2e holds the end-to-end scenarios of swarmsync: spec → observe →
// plan → apply against a real cloud and a real Swarm. A scenario takes a
// World (a spec provider plus how to reach the cloud and the Swarm) as a
// parameter, so the same scenarios run on local machines (dockerd in
// network namespaces, world.go) and through the AWS path: the real aws
// provider against the EC2 emulator, whose instances boot lab nodes that run
// the aws user data (world_aws.go, internal/ec2lab).
//
// Test-only: product code never imports it. It must not reach any network
// but loopback and the namespaces the providers create.
package e2e
