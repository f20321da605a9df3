package local_test

import (
	"testing"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
)

// benchLabUp measures bringing up a lab Swarm (launch through the local
// provider, init/join by user data, all nodes Ready, task image imported).
// Teardown is not timed.
func benchLabUp(b *testing.B, managers, workers int) {
	testenv.NeedLab(b)
	testenv.NeedCommands(b, "docker")
	for i := 0; i < b.N; i++ {
		l, err := lab.New(lab.Options{Managers: managers, Workers: workers, Cluster: "bench"})
		b.StopTimer()
		if l != nil {
			if cerr := l.Close(); cerr != nil {
				b.Error(cerr)
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(managers+workers), "nodes")
}

// BenchmarkLabUp3 brings up 1 manager and 2 workers.
func BenchmarkLabUp3(b *testing.B) { benchLabUp(b, 1, 2) }

// BenchmarkLabUp5 brings up 3 managers and 2 workers.
func BenchmarkLabUp5(b *testing.B) { benchLabUp(b, 3, 2) }
