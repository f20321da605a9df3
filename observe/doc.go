// Package observe owns taking one observation of a cluster: the one place
// where a plan.Observed is assembled from the providers, with exactly one
// call to each (the cloud's instance list and the Swarm's node list).
//
// It must not plan, change anything, or read the clock: "now" is passed in.
package observe
