package plan

import (
	"fmt"
	"testing"

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
			for b.Loop() {
				p, err := Compute(spec, o, Source{})
				if err != nil {
					b.Fatal(err)
				}
				steps = len(p.Steps)
			}
			b.ReportMetric(float64(steps), "steps")
		})
	}
}
