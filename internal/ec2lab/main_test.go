package ec2lab

import (
	"os"
	"testing"

	"github.com/swarmsync/swarmsync/internal/lab"
)

// TestMain fails the package when a machine, namespace, veth, bridge or
// state directory outlives the tests.
func TestMain(m *testing.M) { os.Exit(lab.RunTests(m)) }
