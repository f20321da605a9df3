package plan

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/swarmsync/swarmsync/providers"
	"github.com/swarmsync/swarmsync/schema"
)

// benchCase is a cluster of n nodes (5 managers, the rest in 4 worker
// groups) with work to do: 5% of the workers out of date, 5% with label
// drift, one group short of 10 nodes, a few nodes matched by address.
func benchCase(n int) (schema.Cluster, Observed) {
	spec := baseSpec()
	spec.Managers.Count = 5
	spec.Safety.MaxRemovalsPerApply = n
	spec.Update.Parallelism = 10
	spec.Update.MaxSurge = 5
	spec.Workers = map[string]schema.WorkerGroup{}
	per := (n - 5) / 4
	for i := range 4 {
		spec.Workers[fmt.Sprintf("g%d", i)] = schema.WorkerGroup{Count: per, Availability: "active",
			Instance: schema.Instance{Type: "m5.large", Image: "ami-1"}, Labels: map[string]string{"tier": fmt.Sprint(i)}}
	}
	o := steady(spec)
	g := spec.Workers["g0"]
	g.Count += 10
	spec.Workers["g0"] = g
	for i := range o.Instances {
		if o.Instances[i].Group != schema.ManagersGroup && i%20 == 3 {
			o.Instances[i].Config = "old"
		}
	}
	for i := range o.Swarm.Nodes {
		nd := &o.Swarm.Nodes[i]
		if nd.Role == providers.RoleWorker && i%20 == 7 {
			nd.Labels = map[string]string{providers.NodeLabelGroup: nd.Labels[providers.NodeLabelGroup]}
		}
		if i%50 == 11 {
			nd.EngineLabels = nil // matched by address
		}
	}
	return spec, o
}

// BenchmarkCompute is the plan time and allocations vs nodes that
// internal/perfreport draws (docs/performance.md).
func BenchmarkCompute(b *testing.B) {
	for _, n := range []int{100, 300, 1000, 3000, 10000} {
		spec, o := benchCase(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			var steps int
			cpu0 := cpuTime()
			for b.Loop() {
				p, err := Compute(spec, o, Source{})
				if err != nil {
					b.Fatal(err)
				}
				steps = len(p.Steps)
			}
			b.ReportMetric(float64(steps), "steps")
			// The process's CPU time (GC included) per plan: on a shared
			// machine ns/op also counts waiting for a core.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
