package ec2lab

import (
	"fmt"
	"os"
	"testing"

	"github.com/swarmsync/swarmsync/internal/lab"
)

// TestMain fails the package when a machine, namespace, veth, bridge or
// state directory outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := lab.CheckLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
