// Package aws implements providers.Cloud on Amazon EC2 with aws-sdk-go-v2.
//
// It owns the EC2 calls swarmsync makes: one filtered, paginated
// DescribeInstances per observation (⌈N/1000⌉ requests for N instances),
// RunInstances with tags at launch and a deterministic ClientToken per
// (request token, subnet), and TerminateInstances in batches of at most
// 1,000 ids, only for instances that carry the cluster's tag. It configures
// the SDK retryer for EC2 throttling and keeps every request within EC2's
// published request budgets with a client-side token bucket on an injected
// clock.
//
// It must not decide what to launch or terminate (that is the planner),
// log or return credentials or user data, or call CreateTags (tags are
// applied at launch only). The IAM policy it needs is in IAM.md.
package aws
