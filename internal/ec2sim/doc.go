// Package ec2sim is an EC2 Query-API emulator for tests: a net/http handler
// (usable with httptest or its own loopback listener) that speaks the EC2
// Query protocol (POST form, Version=2016-11-15, XML responses) for
// RunInstances, DescribeInstances, TerminateInstances and CreateTags, so the
// real aws-sdk-go-v2 client can be driven against it.
//
// It models what moto_server does not: pending → running on an injected
// clock, terminated instances that stay visible for a while and then go,
// ClientToken idempotency (and IdempotentParameterMismatch), MaxResults
// validation and NextToken pagination, the RunInstances request budget,
// injectable throttling (RequestLimitExceeded, HTTP 503) and eventual
// consistency, and per-action request counts. A Booter hook lets each
// launched instance boot a real machine.
//
// It is test-only: product code must never import it, and it must not
// listen on anything but loopback and the host's address on a lab bridge
// (ServeOn, for clients inside lab machines).
package ec2sim
