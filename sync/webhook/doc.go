// Package webhook verifies Git hosting webhook deliveries for the
// reconciler (`apply --auto`): GitHub (X-Hub-Signature-256, an HMAC-SHA256
// of the body), GitLab (X-Gitlab-Token, the shared secret itself) and a
// generic signed header (X-Swarmsync-Signature: t=<unix seconds>,v1=<hex
// HMAC-SHA256 of "<t>." + body>), which is also what one daemon uses to
// forward a delivery to the leader's daemon.
//
// Policy: secrets and signatures are compared in constant time; bodies are
// capped (MaxBody) before any work; a delivery is accepted once: its id
// (X-GitHub-Delivery, X-Gitlab-Event-UUID, X-Swarmsync-Delivery, or the
// signature itself) is remembered for the replay window, and a generic
// signature is valid only within that window of its timestamp. A replay
// older than what is remembered can at most start one more pass, which
// changes nothing the spec does not ask for. Only a verified delivery gets
// a 2xx answer; nothing about the secret or the expected signature is ever
// answered or logged.
//
// It must not start passes itself (the Handler's Deliver does), read the
// body's content beyond its size, or log payloads.
package webhook
