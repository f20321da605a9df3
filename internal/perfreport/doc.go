// Command perfreport prints the performance table of swarmsync and draws
// its figures (PNG, gonum.org/v1/plot) into docs/figures, from:
//
//   - the planner's benchmark, which it runs (go test -bench BenchmarkCompute
//     ./plan): plan time and allocations vs nodes, 100 → 10,000;
//   - the JSON figures the lab tests write when SWARMSYNC_PERF_OUT names a
//     directory (default docs/figures/data): the scale scenarios
//     (scale-<world>-<workers>.json: calls per pass and wall time per phase),
//     the emulator fleet (emulator.json: EC2 requests at 1,000 and 10,000
//     instances), workers added (added.json: apply wall time vs workers
//     added) and the soak (soak.json: goroutines, descriptors, memory per
//     pass).
//
// Run from the repository root:
//
//	go run ./internal/perfreport
//
// docs/performance.md says how to refresh the data. Test-only tooling:
// product code never imports it.
package main
