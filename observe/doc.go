// Package observe owns taking one observation of a cluster: the one place
// where a plan.Observed is assembled from the providers, with exactly one
// call to each (the cloud's instance list and the Swarm's node list), plus,
// on aws, one network observation (subnets, security groups, target
// groups, the load balancer) and, when the spec names a load balancer, one
// list of the Swarm's published ports.
//
// It must not plan, change anything, or read the clock: "now" is passed in.
package observe
