// Package daemontest holds what the end-to-end tests of `swarmsync apply
// --auto` share, whether the daemons run as processes (cmd/swarmsync) or as
// the global service (internal/e2e): reading a daemon's /status and
// /metrics, delivering a webhook, and a watcher that samples the Swarm's
// quorum through every manager while a test disturbs the cluster.
package daemontest
