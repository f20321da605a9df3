package lab

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/swarmsync/swarmsync/internal/testenv"
)

// TestReserveSkipsSubnetInUse: a slot whose subnet an interface still
// holds (a lab whose process was killed before its cleanup) is not handed
// out again.
func TestReserveSkipsSubnetInUse(t *testing.T) {
	testenv.NeedLab(t)
	testenv.NeedCommands(t, "ip")
	first, err := reserve()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.release(); err != nil {
		t.Fatal(err)
	}
	// What a killed lab leaves: an interface on the slot's subnet.
	name := fmt.Sprintf("sst%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
	addr := fmt.Sprintf("10.240.%d.254/24", first.n)
	if out, err := exec.Command("ip", "addr", "add", addr, "dev", name).CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	next, err := reserve()
	if err != nil {
		t.Fatal(err)
	}
	defer next.release()
	if next.n == first.n {
		t.Errorf("reserve handed out slot %d (%s) although %s holds %s", next.n, next.subnet(), name, addr)
	}
}
