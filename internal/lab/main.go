package lab

import (
	"fmt"
	"os"
	"testing"
)

// RunTests runs a package's tests, then fails the run when any lab this
// process made left something behind (CheckLeaks). Use it as
//
//	func TestMain(m *testing.M) { os.Exit(lab.RunTests(m)) }
func RunTests(m *testing.M) int {
	code := m.Run()
	if err := CheckLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
