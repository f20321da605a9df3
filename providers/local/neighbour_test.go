package local

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func neighbourDir(t *testing.T, l neighbourLimits) string {
	t.Helper()
	dir := t.TempDir()
	if err := writeNeighbourLimits(dir, l); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNeighbourNeed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		perBridge map[string]int
		want      int
	}{
		{"none", nil, 0},
		{"one bridge of 63", map[string]int{"a": 63}, 63 * 64},
		{"two bridges", map[string]int{"a": 5, "b": 3}, 5*6 + 3*4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := neighbourNeed(tc.perBridge); got != tc.want {
				t.Errorf("neighbourNeed(%v) = %d, want %d", tc.perBridge, got, tc.want)
			}
		})
	}
}

func TestEnsureNeighbourRoom(t *testing.T) {
	def := neighbourLimits{128, 512, 1024}
	for _, tc := range []struct {
		name      string
		cur       neighbourLimits
		perBridge map[string]int
		want      neighbourLimits
		logged    bool
	}{
		{"small cluster fits the default", def, map[string]int{"a": 5}, def, false},
		{"31 machines fit exactly", def, map[string]int{"a": 31}, def, false},
		{"63 machines need more", def, map[string]int{"a": 63}, neighbourLimits{1024, 4096, 8192}, true},
		{"two clusters add up", def, map[string]int{"a": 30, "b": 30}, neighbourLimits{512, 2048, 4096}, true},
		{"never lowered", neighbourLimits{2000, 3000, 3999}, map[string]int{"a": 63}, neighbourLimits{2000, 4096, 8192}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := neighbourDir(t, tc.cur)
			var logs bytes.Buffer
			c := &Cloud{cfg: Config{NeighbourDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))}}
			if err := c.ensureNeighbourRoom(tc.perBridge); err != nil {
				t.Fatal(err)
			}
			got, err := readNeighbourLimits(dir)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("limits (-want +got):\n%s", d)
			}
			if tc.logged != strings.Contains(logs.String(), "net.ipv4.neigh.default.gc_thresh3") {
				t.Errorf("logged %v, want %v: %q", !tc.logged, tc.logged, logs.String())
			}
		})
	}
}

// A host whose limits cannot be raised: the launch is refused, naming the
// setting and the value that would do.
func TestEnsureNeighbourRoomRefuses(t *testing.T) {
	// A read-only kernel setting that holds a small number: writes fail
	// even for root.
	const ro = "/proc/sys/kernel/cap_last_cap"
	if _, err := os.Stat(ro); err != nil {
		t.Skipf("needs %s: %v", ro, err)
	}
	dir := t.TempDir()
	for _, n := range []string{"gc_thresh1", "gc_thresh2", "gc_thresh3"} {
		if err := os.Symlink(ro, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cloud{cfg: Config{NeighbourDir: dir, Logger: slog.New(slog.DiscardHandler)}}
	err := c.ensureNeighbourRoom(map[string]int{"a": 40})
	if err == nil {
		t.Fatal("a size the host cannot hold was accepted")
	}
	for _, want := range []string{"40 local machines", "1640 entries", "net.ipv4.neigh.default.gc_thresh3", "sysctl -w", "gc_thresh3=4096", "launch fewer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// cap_last_cap is ~40: 3 machines (12 entries) fit.
	if err := c.ensureNeighbourRoom(map[string]int{"a": 3}); err != nil {
		t.Errorf("3 machines: %v", err)
	}
}
