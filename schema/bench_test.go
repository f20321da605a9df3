package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoadDir100 loads and validates a spec directory of 100 clusters:
// 90 YAML files (one cluster each, with two worker groups) and a CUE package
// of 10 clusters sharing defaults.
func BenchmarkLoadDir100(b *testing.B) {
	dir := b.TempDir()
	for i := range 90 {
		spec := fmt.Sprintf(`name: cluster-%03d
provider:
  aws: {region: eu-west-1}
managers:
  count: 3
  instance: {type: t3.medium, image: ami-0123, subnets: [subnet-a, subnet-b, subnet-c]}
workers:
  general:
    count: %d
    instance: {type: m5.large, image: ami-0123, subnets: [subnet-a, subnet-b]}
    labels: {tier: web}
  batch:
    count: 2
    instance: {type: c5.xlarge, image: ami-0123, subnets: [subnet-a]}
update: {parallelism: 2, delay: 10s, joinTimeout: 5m}
schedule:
  reconcile: "@every 1m"
  disruptionWindows: [{cron: "0 2 * * SAT", duration: 4h}]
`, i, i%10)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("c%03d.yaml", i)), []byte(spec), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cue := "package specs\n\nclusters: [_]: {provider: local: {}, update: delay: \"5s\"}\n"
	for i := range 10 {
		cue += fmt.Sprintf("clusters: \"local-%d\": {managers: count: 3, workers: general: count: %d}\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "local.cue"), []byte(cue), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := LoadDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Clusters) != 100 {
			b.Fatalf("loaded %d clusters", len(res.Clusters))
		}
	}
}
