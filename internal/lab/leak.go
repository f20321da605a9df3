package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/swarmsync/swarmsync/providers/local"
)

// CheckLeaks reports every namespace, veth, bridge, FORWARD rule, process or
// state directory left behind by the labs this process made. Call it after
// m.Run in TestMain; it is nil when everything was cleaned up.
func CheckLeaks() error {
	traces.Lock()
	labs := append([]trace(nil), traces.labs...)
	traces.Unlock()
	var leaks []string
	for _, t := range labs {
		if exists("/sys/class/net/" + t.bridge) {
			leaks = append(leaks, "bridge "+t.bridge)
		}
		if exec.CommandContext(context.Background(), "iptables", "-w", "-C", "FORWARD", "-i", t.bridge, "-o", t.bridge, "-j", "ACCEPT").Run() == nil ||
			exec.CommandContext(context.Background(), "iptables", "-w", "-C", "FORWARD", "-i", t.bridge, "!", "-o", t.bridge, "-j", "DROP").Run() == nil {
			leaks = append(leaks, "FORWARD rule for "+t.bridge)
		}
		ids := t.ids
		if entries, err := os.ReadDir(t.stateDir + "/instances"); err == nil {
			for _, e := range entries {
				ids = append(ids, e.Name())
			}
		}
		for _, id := range ids {
			if ns := local.NetnsName(id); exists("/var/run/netns/" + ns) {
				leaks = append(leaks, "netns "+ns)
			}
			if v := local.VethName(id); exists("/sys/class/net/" + v) {
				leaks = append(leaks, "veth "+v)
			}
		}
		for _, pid := range processesUnder(t.stateDir) {
			leaks = append(leaks, fmt.Sprintf("process %d (%s)", pid, t.stateDir))
		}
		if exists(t.stateDir) {
			leaks = append(leaks, "state directory "+t.stateDir)
		}
	}
	if len(leaks) > 0 {
		return errors.New("lab leaks: " + strings.Join(leaks, ", "))
	}
	return nil
}

// Made reports how many labs this process has made (so a leak check can
// show it checked something).
func Made() int {
	traces.Lock()
	defer traces.Unlock()
	return len(traces.labs)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// processesUnder lists processes whose command line mentions dir.
func processesUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(b, []byte(dir+"/")) {
			out = append(out, pid)
		}
	}
	return out
}
