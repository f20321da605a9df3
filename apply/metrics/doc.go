// Package metrics is the Prometheus instrumentation of the reconcile loop
// (`apply --auto`'s /metrics): passes by trigger and result, steps by
// action and result, pass duration, last successful pass, leadership,
// pause, each group's desired and actual counts, reachable managers
// against quorum, and webhook deliveries by result.
//
// It records what the loop reports (it implements apply.LoopHook) and what
// a pass observed (Observed); it must not decide anything, read the
// clock for logic, or label a series with anything unbounded (no node or
// instance ids: groups come from the spec, actions and results are enums).
package metrics
