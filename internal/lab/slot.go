package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gofrs/flock"

	"github.com/swarmsync/swarmsync/providers/local"
)

// RunDir holds the slot leases of every lab on the host.
const RunDir = "/run/swarmsync-lab"

// maxSlots bounds the number of labs on the host at once; slot n uses the
// subnet 10.240.n.0/24.
const maxSlots = 200

// slot is a lease on a subnet, held by this process until released.
type slot struct {
	n    int
	path string
}

func (s slot) subnet() string { return fmt.Sprintf("10.240.%d.0/24", s.n) }

// reserve takes the lowest free slot. A lease whose owner process is gone
// is free again.
func reserve() (slot, error) {
	if err := os.MkdirAll(RunDir, 0o700); err != nil {
		return slot{}, fmt.Errorf("failed to create %s: %w", RunDir, err)
	}
	lk := flock.New(filepath.Join(RunDir, "lock"))
	if err := lk.Lock(); err != nil {
		return slot{}, fmt.Errorf("failed to lock %s: %w", RunDir, err)
	}
	defer lk.Unlock()
	for n := 0; n < maxSlots; n++ {
		path := filepath.Join(RunDir, fmt.Sprintf("slot-%03d", n))
		if b, err := os.ReadFile(path); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && processExists(pid) {
				continue
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return slot{}, fmt.Errorf("failed to read lease %s: %w", path, err)
		}
		// A lab whose process was killed before its cleanup leaves its
		// bridge on the subnet: a second one there would be unreachable
		// from the host (the route goes to the first). Skip it.
		if local.SubnetUser(netip.MustParsePrefix(slot{n: n}.subnet())) != "" {
			continue
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
			return slot{}, fmt.Errorf("failed to write lease %s: %w", path, err)
		}
		return slot{n: n, path: path}, nil
	}
	return slot{}, fmt.Errorf("no free lab slot in %s (%d in use)", RunDir, maxSlots)
}

func (s slot) release() error {
	lk := flock.New(filepath.Join(RunDir, "lock"))
	if err := lk.Lock(); err != nil {
		return fmt.Errorf("failed to lock %s: %w", RunDir, err)
	}
	defer lk.Unlock()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to release lease %s: %w", s.path, err)
	}
	return nil
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
