// Package testenv decides, for tests, whether the real parts they need
// (root, dockerd, moto_server, git, sshd) are present. Without them a test
// skips with a message, unless SWARMSYNC_REQUIRE_LAB=1 (set in CI), where
// it fails instead. It also runs a real Prometheus (StartPrometheus) for
// tests that query what the daemons export. Test-only; never imported by
// product code.
package testenv
