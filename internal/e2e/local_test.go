package e2e

import (
	"os"
	"testing"

	"github.com/swarmsync/swarmsync/internal/lab"
	"github.com/swarmsync/swarmsync/internal/testenv"
)

// The scenarios on local machines: each test has its own subnet
// (10.247.N.0/24) and state directory.

func needImage(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(lab.BusyboxPath); err != nil {
		testenv.Unavailable(t, "needs %s (apt-get install busybox-static)", lab.BusyboxPath)
	}
}

func TestLocalBootstrap(t *testing.T) {
	w := NewLocalWorld(t, "boot", 12)
	took := Bootstrap(t, w)
	t.Logf("FIGURE bootstrap 3 managers + 2 workers: %s", took.Round(10e6))
}

func TestLocalScaleWorkers(t *testing.T) {
	needImage(t)
	w := NewLocalWorld(t, "workers", 13)
	up := ScaleWorkers(t, w)
	t.Logf("FIGURE scale +2 workers: %s", up.Round(10e6))
}

func TestLocalScaleManagers(t *testing.T) {
	w := NewLocalWorld(t, "managers", 14)
	per := ScaleManagers(t, w)
	t.Logf("FIGURE manager replacement (rolling, mean per manager): %s", per.Round(10e6))
}

func TestLocalCrashSafety(t *testing.T) {
	w := NewLocalWorld(t, "crash", 15)
	// Scale-up 1 → 3 workers and scale-down 3 → 1, interrupted at every
	// step index in turn.
	up, down := CrashSafety(t, w)
	t.Logf("interrupted %d scale-up and %d scale-down steps", up, down)
}
