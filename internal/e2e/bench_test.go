package e2e

import (
	"testing"
)

// Benchmarks of whole operations on local machines. Each op builds its own
// world, so run them with -benchtime=1x:
//
//	go test ./internal/e2e -run '^$' -bench . -benchtime=1x
//
// The reported metrics are the converge times of the operation itself,
// without the world's set-up and teardown.

func BenchmarkLocalBootstrap3x2(b *testing.B) {
	for i := range b.N {
		w := NewLocalWorld(b, "bbench", 20+i%10)
		took := Bootstrap(b, w)
		b.ReportMetric(took.Seconds(), "s/bootstrap")
	}
}

func BenchmarkLocalManagerReplacement(b *testing.B) {
	for i := range b.N {
		w := NewLocalWorld(b, "mbench", 30+i%10)
		per := ScaleManagers(b, w)
		b.ReportMetric(per.Seconds(), "s/replaced-manager")
	}
}
