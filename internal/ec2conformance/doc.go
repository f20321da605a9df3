// Package ec2conformance holds the EC2 conformance suite: the same tests
// (tags, filters, pagination, state names, errors, the network and
// load balancer calls) run the real aws
// provider and raw aws-sdk-go-v2 calls against moto_server and against
// internal/ec2sim, so the emulator stays honest. The package itself only
// provides the moto_server launcher; the suite is in its tests.
//
// Test-only: product code must never import it. It starts moto_server on
// loopback only and ends only the process it started.
package ec2conformance
