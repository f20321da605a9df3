// Package plan owns the observation snapshot (Observed), the plan (Plan,
// Step, Action), the pure planner Compute and the safety invariants it
// guarantees, the observation fingerprint and the JSON codec.
//
// It must not do I/O, read the clock or use randomness, and must not import
// providers' SDKs: same inputs, same plan, byte for byte.
package plan
