package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The host's IPv4 neighbour (ARP) table is one table for every network
// namespace: its limits net.ipv4.neigh.default.gc_thresh1/2/3 (128, 512
// and 1024 by default) bound the entries of all local machines together.
// Past gc_thresh3 the kernel creates no new entry ("neighbour: arp_cache:
// neighbor table overflow"), and machines cannot reach each other: a Swarm
// of ~70 local machines fails to join. Before a launch, the provider
// computes what its machines may need and raises the three thresholds when
// they are too low, or refuses the launch naming the setting.

// DefaultNeighbourDir is where the kernel exposes the default neighbour
// table settings.
const DefaultNeighbourDir = "/proc/sys/net/ipv4/neigh/default"

// neighbourLimits are the three garbage-collection thresholds of the table.
type neighbourLimits struct{ Thresh1, Thresh2, Thresh3 int }

// neighbourNeed is the number of neighbour entries a set of bridges may
// need, given the number of machines on each: every machine may hold an
// entry for every other machine of its bridge and for the gateway (Swarm's
// gossip reaches every node), and the host holds one per machine.
func neighbourNeed(perBridge map[string]int) int {
	need := 0
	for _, n := range perBridge {
		need += n * (n + 1)
	}
	return need
}

// neighbourTarget returns thresholds that hold need entries with room to
// spare (twice the need, for the host's own entries and other labs), in the
// kernel default's proportions (1:4:8); never lower than cur.
func neighbourTarget(cur neighbourLimits, need int) neighbourLimits {
	t3 := 1024
	for t3 < 2*need {
		t3 *= 2
	}
	return neighbourLimits{
		Thresh1: max(cur.Thresh1, t3/8),
		Thresh2: max(cur.Thresh2, t3/2),
		Thresh3: max(cur.Thresh3, t3),
	}
}

func readNeighbourLimits(dir string) (neighbourLimits, error) {
	var l neighbourLimits
	for i, p := range []*int{&l.Thresh1, &l.Thresh2, &l.Thresh3} {
		name := filepath.Join(dir, "gc_thresh"+strconv.Itoa(i+1))
		b, err := os.ReadFile(name)
		if err != nil {
			return l, fmt.Errorf("failed to read the neighbour table limit %s: %w", name, err)
		}
		if *p, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return l, fmt.Errorf("failed to read the neighbour table limit %s: %q is not a number", name, strings.TrimSpace(string(b)))
		}
	}
	return l, nil
}

// writeNeighbourLimits writes the thresholds, largest first (the kernel
// keeps thresh1 ≤ thresh2 ≤ thresh3 only by convention, but a reader
// between two writes sees sane values this way).
func writeNeighbourLimits(dir string, l neighbourLimits) error {
	for i, v := range []int{l.Thresh3, l.Thresh2, l.Thresh1} {
		name := filepath.Join(dir, "gc_thresh"+strconv.Itoa(3-i))
		if err := os.WriteFile(name, []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
			return fmt.Errorf("failed to write %s: %w", name, err)
		}
	}
	return nil
}

// ensureNeighbourRoom makes sure the host's neighbour table can hold need
// entries. It raises the thresholds (and logs it) when gc_thresh3 is lower,
// or returns an error naming the setting and the value it needs.
func (c *Cloud) ensureNeighbourRoom(perBridge map[string]int) error {
	need := neighbourNeed(perBridge)
	dir := c.cfg.NeighbourDir
	cur, err := readNeighbourLimits(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no IPv4 neighbour table settings here: nothing to check
	}
	if err != nil {
		return err
	}
	if cur.Thresh3 >= need {
		return nil
	}
	machines := 0
	for _, n := range perBridge {
		machines += n
	}
	want := neighbourTarget(cur, need)
	if err := writeNeighbourLimits(dir, want); err != nil {
		return fmt.Errorf("failed to launch: %d local machines may need %d entries in the host's neighbour (ARP) table, "+
			"but net.ipv4.neigh.default.gc_thresh3 is %d and raising it failed (%v); "+
			"run `sysctl -w net.ipv4.neigh.default.gc_thresh1=%d net.ipv4.neigh.default.gc_thresh2=%d net.ipv4.neigh.default.gc_thresh3=%d` "+
			"as root on the host, or launch fewer machines",
			machines, need, cur.Thresh3, err, want.Thresh1, want.Thresh2, want.Thresh3)
	}
	c.cfg.Logger.Warn("raised the host's neighbour (ARP) table limits: it is shared by every network namespace, and the local machines may need more entries than it held",
		"machines", machines, "entries_needed", need,
		"net.ipv4.neigh.default.gc_thresh1", fmt.Sprintf("%d→%d", cur.Thresh1, want.Thresh1),
		"net.ipv4.neigh.default.gc_thresh2", fmt.Sprintf("%d→%d", cur.Thresh2, want.Thresh2),
		"net.ipv4.neigh.default.gc_thresh3", fmt.Sprintf("%d→%d", cur.Thresh3, want.Thresh3))
	return nil
}
